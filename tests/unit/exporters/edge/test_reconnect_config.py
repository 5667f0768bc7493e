"""``remote_write.reconnect_jitter``: parsed, handed to the delivery worker,
off by default, and refused with the field named when it makes no sense."""

from __future__ import annotations

import pytest

from modelmon.config import ConfigError
from modelmon.exporters.edge import edge_config_from_mapping
from modelmon.exporters.edge.sender import delivery_settings


def _config(**remote_write: object) -> dict[str, object]:
    return {"edge": {"device_id": "d", "spool": {"path": "/tmp/x"},
                     "remote_write": {"url": "http://127.0.0.1:9090/api/v1/write",
                                      **remote_write}}}


@pytest.mark.parametrize("raw,seconds", [("30s", 30.0), (45, 45.0), ("2m", 120.0), ("0s", 0.0),
                                         (0, 0.0), (None, 0.0)])
def test_reconnect_jitter_reaches_the_delivery_worker(raw: object, seconds: float) -> None:
    config = edge_config_from_mapping(_config(reconnect_jitter=raw, order="live_first"))
    assert config.remote_write.reconnect_jitter == seconds
    settings = delivery_settings(config.remote_write)
    assert settings.reconnect_jitter == seconds and settings.newest_first


def test_reconnect_jitter_is_off_by_default() -> None:
    config = edge_config_from_mapping(_config())
    assert config.remote_write.reconnect_jitter == 0.0
    assert delivery_settings(config.remote_write).reconnect_jitter == 0.0


@pytest.mark.parametrize("raw", ["-5s", "soon", True, [30], "2h", float("nan")])
def test_a_bad_reconnect_jitter_names_the_field(raw: object) -> None:
    with pytest.raises(ConfigError) as err:
        edge_config_from_mapping(_config(reconnect_jitter=raw))
    assert str(err.value).startswith("edge.remote_write.reconnect_jitter:"), str(err.value)
