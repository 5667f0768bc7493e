"""The edge link proxy forwards, cuts (open and new connections) and restores."""

from __future__ import annotations

import socket
import socketserver
import threading
from collections.abc import Iterator

import pytest

from modelmon.demo.link_proxy import LinkProxy
from modelmon.demo.processes import free_port


class _Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        while data := self.request.recv(1024):
            self.request.sendall(data)


@pytest.fixture
def echo_port() -> Iterator[int]:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Echo)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def _roundtrip(port: int, payload: bytes = b"sample") -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(payload)
        return s.recv(1024)


def test_forwards_cuts_and_restores(echo_port: int) -> None:
    proxy = LinkProxy(free_port(), echo_port, "edge-x")
    try:
        assert _roundtrip(proxy.port) == b"sample"
        held = socket.create_connection(("127.0.0.1", proxy.port), timeout=5)
        held.sendall(b"a")
        assert held.recv(16) == b"a"
        proxy.cut()
        assert not proxy.up
        # the open connection is closed, a new one gets nothing through
        assert held.recv(16) == b""
        held.close()
        with pytest.raises(OSError):
            got = _roundtrip(proxy.port)
            if got == b"":
                raise ConnectionResetError("closed")
        proxy.restore()
        assert proxy.up and _roundtrip(proxy.port, b"back") == b"back"
    finally:
        proxy.close()
