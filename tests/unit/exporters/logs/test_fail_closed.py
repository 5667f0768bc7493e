"""Mistakes in the logs configuration stop a server from starting, naming the
field; they never silently switch off redaction or lose events later."""

from __future__ import annotations

import subprocess
import sys

import pytest
from prometheus_client import CollectorRegistry

from modelmon import LogShipper


def test_a_redaction_typo_refuses_to_start_instead_of_shipping_pii(tmp_path):
    with pytest.raises(ValueError, match=r"logs\.redact"):
        LogShipper("file", path=tmp_path / "out.jsonl", spool_dir=tmp_path / "spool",
                   registry=CollectorRegistry(),
                   processor_config={"redact": {"drop_fieldz": ["user.email"]}})
    assert not (tmp_path / "out.jsonl").exists() and not (tmp_path / "spool").exists()


def test_redaction_applies_with_the_correct_key(tmp_path):
    import json

    shipper = LogShipper("file", path=tmp_path / "out.jsonl", spool_dir=tmp_path / "spool",
                         registry=CollectorRegistry(),
                         processor_config={"redact": {"drop_fields": ["user.email"]}})
    try:
        shipper.emit({"message": "mail jane@example.com", "user": {"email": "jane@example.com"}})
        assert shipper.flush(10)
        event = json.loads((tmp_path / "out.jsonl").read_text())
        assert "jane@example.com" not in json.dumps(event)
    finally:
        shipper.close()


@pytest.mark.parametrize("logs,fragment", [
    ("{sink: nope}", "logs.sink: unknown sink 'nope'"),
    ("{sink: logstash_tcp, logstash_tcp: {port: abc}}", "logs.logstash_tcp.port"),
    ("{sink: elasticsearch, elasticsearch: {url: 'ht tp://x y'}}", "logs.elasticsearch.url"),
    ("{sink: elasticsearch, elasticsearch: {url: 'http://x:9200', colour: red}}",
     "logs.elasticsearch: "),
    ("{redact: {drop_fieldz: [a]}}", "logs.redact: unknown key(s) drop_fieldz"),
    ("{max_payload_chars: lots}", "logs.max_payload_chars: expected a positive integer"),
])
def test_serve_refuses_a_bad_logs_section_before_starting(tmp_path, logs, fragment):
    config = tmp_path / "serve.yml"
    config.write_text(f"logs: {logs}\n")
    proc = subprocess.run([sys.executable, "-m", "modelmon", "serve", "--config", str(config)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert fragment in proc.stderr and str(config) in proc.stderr
    assert "Traceback" not in proc.stderr
