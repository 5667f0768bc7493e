"""The scripted loopback remote_write receiver (``support.remote_write_receiver``)
as a fixture; the integration tests use a real Prometheus."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from support.remote_write_receiver import Receiver, serve


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rec, server, _ = serve()
    yield rec
    server.shutdown()
    server.server_close()
