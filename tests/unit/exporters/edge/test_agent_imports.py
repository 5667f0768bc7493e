"""What ``modelmon edge run`` loads: the agent runs on small devices (RSS goal
40 MB with rules, alerting and the query API), so modules it does not need
stay out of it. Each case runs the real command (``python -m modelmon``'s
``__main__``) until it has collected, evaluated its rules, notified and
answered the query API, then stops it and reads the modules it had loaded.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import yaml

from modelmon.demo.processes import free_port
from modelmon.exporters.edge.status import read_status

REPO = Path(__file__).resolve().parents[4]
EDGE_RULES = REPO / "alert_rules" / "modelmon.edge.rules.yml"
# Never on the agent's run path: protobuf (the window reads its collections itself,
# prompb.WriteRequestReader), decimal (rules/float_text), cryptography (only to check
# a bundle's signature, in a child process), and the other products' libraries.
NEVER = ("google.protobuf", "decimal", "_decimal", "cryptography", "numpy", "pandas",
         "flask", "requests")
PROBE_RULES = """
groups:
- name: probe
  rules:
  - record: probe:collected
    expr: sum(modelmon_edge_samples_collected_total) + 1.5
  - alert: ProbeFiring
    expr: vector(1.25)
    annotations: {summary: "value {{ $value }}"}
"""
# ``python -m modelmon edge run ...``, writing sys.modules to argv[1] when it exits.
MAIN = ("import atexit, runpy, sys\n"
        "out = sys.argv.pop(1)\n"
        "atexit.register(lambda: open(out, 'w').write('\\n'.join(sorted(sys.modules))))\n"
        "sys.argv[0] = 'modelmon'\n"
        "runpy.run_module('modelmon', run_name='__main__', alter_sys=True)\n")


def run_agent(tmp_path: Path, edge: dict[str, object], query: str | None) -> set[str]:
    """The modules ``modelmon edge run`` imported until it ran its loops once (and
    answered ``query`` on its query API)."""
    port = free_port()
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens: spooled, retried
    config = {"edge": {
        "device_id": "imports", "interval": 0.2, "listen": f"127.0.0.1:{port}",
        "collectors": ["system"], "spool": {"path": str(tmp_path / "state")},
        "remote_write": {"url": f"{dead}/api/v1/write"}, **edge}}
    (tmp_path / "edge.yaml").write_text(yaml.safe_dump(config))
    stderr = open(tmp_path / "stderr.txt", "wb")
    proc = subprocess.Popen(
        [sys.executable, "-c", MAIN, str(tmp_path / "modules.txt"), "edge", "run", "--config",
         str(tmp_path / "edge.yaml")], stdout=subprocess.DEVNULL, stderr=stderr)
    stderr.close()
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert proc.poll() is None, (tmp_path / "stderr.txt").read_text()[-3000:]
            status = read_status(tmp_path / "state" / "status.json")
            if status and status.get("running") and status["spool"]["accepted_samples"]:
                break
            time.sleep(0.1)
        else:
            pytest.fail("the agent did not collect within 30 s")
        if query is not None:
            while True:  # the rules' first results: the group runs after a collection
                url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode(
                    {"query": query})
                with urllib.request.urlopen(url, timeout=5) as response:
                    result = json.load(response)["data"]["result"]
                if result or time.monotonic() > deadline:
                    break
                time.sleep(0.1)
            assert result and float(result[0]["value"][1]) > 0, result
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=20)
    assert proc.returncode == 0, (tmp_path / "stderr.txt").read_text()[-3000:]
    return set((tmp_path / "modules.txt").read_text().split())


def imported_of(modules: set[str], names: tuple[str, ...]) -> list[str]:
    return sorted(m for m in modules if any(m == n or m.startswith(n + ".") for n in names))


def test_rules_alerting_and_query_api_load_no_heavy_module(tmp_path: Path) -> None:
    (tmp_path / "probe.rules.yml").write_text(PROBE_RULES)
    modules = run_agent(tmp_path, {
        "rules": [str(EDGE_RULES), str(tmp_path / "probe.rules.yml")], "query_window": "10m",
        "alerting": {"alertmanagers": [{"url": f"http://127.0.0.1:{free_port()}"}]},
        # pulled with urllib: requests alone was about 5 MiB of the agent's RSS
        "bundle": {"url": f"http://127.0.0.1:{free_port()}/site.tar.gz", "allow_unsigned": True},
    }, query="probe:collected")
    # The run path really ran: the evaluator, the notifier and the query API.
    assert {"promql_parser", "modelmon.exporters.edge.alerting.notifier",
            "modelmon.exporters.edge.rules.query_api",
            "modelmon.exporters.edge.bundles.http_get"} <= modules
    assert imported_of(modules, NEVER) == []
    state = json.loads((tmp_path / "state" / "alerts-state.json").read_text())
    assert "ProbeFiring" in json.dumps(state)


def test_without_rules_the_promql_parser_is_not_loaded(tmp_path: Path) -> None:
    modules = run_agent(tmp_path, {}, query=None)
    assert "modelmon.exporters.edge.agent" in modules
    assert imported_of(modules, (*NEVER, "promql_parser", "modelmon.exporters.edge.promql",
                                 "modelmon.exporters.edge.alerting.pipeline")) == []
