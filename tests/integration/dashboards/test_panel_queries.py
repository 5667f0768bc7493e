"""Every PromQL target of every dashboard runs against a real Prometheus that
scrapes a live workload (and evaluates the modelmon rules): it must parse and
return data, or stand in ALLOWLIST with the reason it cannot here."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
from modelmon.dashboards import render_all as render_dashboards
from modelmon.dashboards.references import panels, prometheus_targets

from modelmon.alerting import render_all, rules_config_from_mapping
from modelmon.prometheus_process import prometheus_config, running_prometheus

from .conftest import Workload

pytestmark = pytest.mark.integration

# (dashboard uid, panel title or "*") -> why the workload cannot give it data.
ALLOWLIST: dict[tuple[str, str], str] = {
    ("modelmon-edge-fleet", "*"): (
        "edge_* series come from the edge agent's remote_write, which needs an outage to "
        "produce backlog and drops; tests/integration/edge drives it. The system_* panels of "
        "this dashboard are checked here: the workload runs the system collector plugin."
    ),
    ("modelmon-log-pipeline", "*"): (
        "log_* series come from the log shipper, which this workload does not run "
        "(tests/integration/logs drives it against the test bulk server)."
    ),
    ("modelmon-model-quality", "Quality check errors per second"): (
        "counts failures of the quality exporter itself (a profile it cannot apply, a bug); "
        "a correct run has none, so the series does not exist"
    ),
}
# Panels of an allowlisted dashboard that must still return data here.
MUST_HAVE_DATA = {
    ("modelmon-edge-fleet", "Model version per device"),
    ("modelmon-edge-fleet", "CPU utilization"),
    ("modelmon-edge-fleet", "Memory available"),
    ("modelmon-edge-fleet", "Filesystem used"),
}
# Grafana's variables, as "All" resolves them.
VARIABLES = {
    "$__rate_interval": "15s", "$model": ".*", "$version": ".*", "$device": ".*",
    "$drift_method": "psi",
}


def _resolve(expr: str) -> str:
    for name, value in VARIABLES.items():
        expr = expr.replace(name, value)
    assert "$" not in expr, f"unresolved variable in {expr!r}"
    return expr


def _allowed(uid: str, title: str) -> str | None:
    if (uid, title) in MUST_HAVE_DATA:
        return None
    return ALLOWLIST.get((uid, title)) or ALLOWLIST.get((uid, "*"))


def test_every_panel_query_parses_and_returns_data(tmp_path: Path, workload: Workload) -> None:
    rules = tmp_path / "modelmon.rules.yml"
    rules.write_text(render_all(rules_config_from_mapping({"evaluation_interval": "1s"}))[
        "modelmon.rules.yml"])
    config = prometheus_config(workload.targets, scrape_interval="1s", job="modelmon")
    config["rule_files"] = [str(rules)]
    dashboards = [json.loads(t) for t in render_dashboards().values()]
    with running_prometheus(config, workdir=tmp_path / "prometheus") as prom:
        prom.wait_for("modelmon_feedback_total", timeout=30)
        time.sleep(6)  # several scrapes and rule evaluations for rate() and the rules
        empty: list[str] = []
        checked = 0
        for dash in dashboards:
            for title, expr in prometheus_targets(dash):
                result = prom.query(_resolve(expr))  # raises on a parse error
                checked += 1
                if not result and not _allowed(dash["uid"], title):
                    empty.append(f"{dash['uid']} / {title}: {expr}")
        assert not empty, (
            f"{len(empty)} of {checked} panel queries returned no data:\n" + "\n".join(empty)
            + f"\nworkload errors: {workload.errors}"
        )
        assert checked > 60


def test_allowlist_names_existing_panels() -> None:
    titles = {
        (dash["uid"], panel["title"])
        for dash in (json.loads(t) for t in render_dashboards().values())
        for panel in panels(dash)
    }
    uids = {uid for uid, _ in titles}
    for uid, title in [*ALLOWLIST, *MUST_HAVE_DATA]:
        assert (uid, title) in titles or (title == "*" and uid in uids), (uid, title)


def test_non_prometheus_panels_are_the_elasticsearch_ones() -> None:
    """Elasticsearch panels cannot run here (no Elasticsearch): they are the only ones skipped."""
    for text in render_dashboards().values():
        dash = json.loads(text)
        for panel in panels(dash):
            if panel["datasource"]["type"] != "prometheus":
                assert panel["datasource"]["type"] == "elasticsearch", panel["title"]
                assert dash["uid"] == "modelmon-logs-elasticsearch"
                for target in panel["targets"]:
                    assert re.search(r"log\.level:error", target["query"])
