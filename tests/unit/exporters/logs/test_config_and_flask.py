"""The logs: config section, and correlation ids through a Flask app."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from prometheus_client import CollectorRegistry

from modelmon.config import ConfigError
from modelmon.exporters.logs import LogShipper, flask_hooks
from modelmon.exporters.logs.config import shipper_options


def test_config_section_becomes_shipper_options(tmp_path: Path) -> None:
    (tmp_path / "key").write_text("c2VjcmV0\n")
    opts = shipper_options({
        "sink": "elasticsearch", "spool_dir": "spool",
        "spool": {"max_bytes": "64MiB", "max_age": "2d", "fsync": "always"},
        "batch_size": 200, "backoff": {"initial": "100ms", "max": "30s"},
        "elasticsearch": {"url": "https://es:9200", "api_key_file": "key", "index": "logs-a-b"},
    }, base_dir=tmp_path)
    assert opts["spool_dir"] == tmp_path / "spool"
    assert (opts["max_bytes"], opts["max_age"], opts["fsync"]) == (64 * 2**20, 172800.0, "always")
    assert (opts["backoff_initial"], opts["backoff_max"], opts["batch_size"]) == (0.1, 30.0, 200)
    assert opts["api_key"] == "c2VjcmV0" and opts["url"] == "https://es:9200"


@pytest.mark.parametrize("section,message", [
    ({"spool": {"max_bytes": "lots"}}, "logs.spool.max_bytes"),
    ({"spool": {"fsync": "sometimes"}}, "logs.spool.fsync: expected one of"),
    ({"batchsize": 10}, "logs: unknown key(s) batchsize"),
    ({"batch_size": 0}, "logs.batch_size"),
])
def test_config_errors_name_the_field(section: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        shipper_options(section)


def test_unknown_sink_names_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="known sinks are cloudwatch, elasticsearch, file, gelf, logstash_http"):
        LogShipper(sink="kafka", spool_dir=tmp_path, registry=CollectorRegistry())


def test_from_config_builds_a_working_shipper(tmp_path: Path) -> None:
    shipper = LogShipper.from_config(
        {"sink": "file", "spool_dir": str(tmp_path / "s"),
         "file": {"path": str(tmp_path / "out.jsonl")}},
        registry=CollectorRegistry())
    try:
        shipper.emit({"message": "hi"})
        assert shipper.flush(10)
        assert '"message":"hi"' in (tmp_path / "out.jsonl").read_text()
    finally:
        shipper.close()


def test_flask_requests_get_a_correlation_id_in_events_and_response(file_shipper: Any) -> None:
    shipped = file_shipper()
    app = Flask(__name__)
    flask_hooks(app, header="X-Correlation-ID")

    @app.post("/predict")
    def predict() -> Any:
        shipped.shipper.emit({"message": "scored"})
        return {"ok": True}

    client = app.test_client()
    given = client.post("/predict", headers={"X-Correlation-ID": "abc-123"})
    assert given.headers["X-Correlation-ID"] == "abc-123"
    made = client.post("/predict")
    generated = made.headers["X-Correlation-ID"]
    assert len(generated) == 32
    hostile = client.post("/predict", headers={"X-Correlation-ID": "x" * 500})
    assert len(hostile.headers["X-Correlation-ID"]) == 32  # replaced, never echoed
    ids = [e["trace"]["id"] for e in shipped.events()]
    assert ids == ["abc-123", generated, hostile.headers["X-Correlation-ID"]]
