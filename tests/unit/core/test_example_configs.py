"""The example configs in examples/, which the README and the docs point at,
load with the loaders the commands use, so they stay valid as the code moves."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from modelmon.config import load_serve_config, load_yaml

REPO = Path(__file__).resolve().parents[3]
EXAMPLES = REPO / "examples"
LOG_SINKS = ("elasticsearch", "logstash_tcp", "logstash_http", "file")


def test_serve_example_loads_with_its_settings() -> None:
    config = load_serve_config(EXAMPLES / "serve.yml")
    assert (config.host, config.port) == ("127.0.0.1", 9110)
    assert config.ingest.max_body_bytes == 1024 * 1024
    assert config.buckets["inference_duration_seconds"][0] == 0.005


def test_edge_example_loads_with_its_logs_section() -> None:
    from modelmon.exporters.edge.config import load_edge_config

    config = load_edge_config(EXAMPLES / "edge.yml")
    assert config.device_id == "press-line-7"
    assert config.remote_write.url.endswith("/api/v1/write")
    assert config.collectors == ("system",)
    assert config.logs is not None and config.logs["sink"] == "file"


def test_logs_example_gives_shipper_options_and_every_sink_builds() -> None:
    from modelmon.exporters.logs.config import check_sink, shipper_options

    section = load_yaml(EXAMPLES / "logs.yml")["logs"]
    options = shipper_options(section, EXAMPLES)
    assert options["sink"] == "elasticsearch"
    assert options["processor_config"]["redact"]["ip_addresses"] is True
    # The sections of the sinks not selected are documentation too: each builds.
    sinks = [s for s in LOG_SINKS if s in section]
    assert sinks, "examples/logs.yml shows no sink options"
    for sink in sinks:
        check_sink({**section, "sink": sink}, EXAMPLES)


def test_logs_example_redacts_with_its_settings() -> None:
    from modelmon.exporters.logs.config import redact_settings
    from modelmon.exporters.logs.redaction import Redactor

    enabled, options = redact_settings(load_yaml(EXAMPLES / "logs.yml")["logs"])
    assert enabled
    event = Redactor.from_config(options)({"message": "from 10.0.0.7, jane@example.com",
                                           "user": {"password": "x"}})
    assert event["message"] == "from [REDACTED:ip], [REDACTED:email]"
    assert event["user"] == {}


@pytest.mark.parametrize("doc", ["README.md", "docs/serve.md", "docs/edge.md",
                                 "docs/logging.md"])
def test_the_docs_point_at_the_examples(doc: str) -> None:
    text = (REPO / doc).read_text()
    named = set(re.findall(r"examples/[\w.-]+\.yml", text))
    assert named, f"{doc} names no example config"
    for path in named:
        assert (REPO / path).is_file(), f"{doc} names {path}, which does not exist"
