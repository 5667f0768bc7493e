"""``modelmon report`` against a real Prometheus that scrapes a live workload
(and evaluates the modelmon rules, fast enough for alerts to fire), rendered in
real headless Chromium: every panel of the dashboards is there, every chart
draws data (or is a panel the workload cannot feed, with its reason in
``test_panel_queries.ALLOWLIST``), the console stays clean, the page fetches
nothing from a network, and the screenshot is not blank."""

from __future__ import annotations

import json
import random
import re
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from prometheus_client import CollectorRegistry, start_http_server

from modelmon.alerting import render_all, thresholds_from_mapping
from modelmon.dashboards import render_all as render_dashboards
from modelmon.dashboards.references import json_panels
from modelmon.dashboards.report import ReportData, write_report
from modelmon.demo.processes import (
    PrometheusProcess,
    free_port,
    prometheus_config,
    running_prometheus,
    stop_process,
    wait_http_ok,
)
from support.chromium import open_page, png_pixels

from ..conftest import Workload, binary
from ..test_panel_queries import ALLOWLIST, _edge_agent

pytestmark = pytest.mark.integration

# Alerts that fire within seconds on this workload (10% errors, 12% bad input
# rows): the windows stay the defaults the dashboards draw, only the waits go.
FAST_ALERTS = {"evaluation_interval": "1s", "slo": {"page_for": "0s"},
               "quality": {"violation_for": "0s"}}
RUN_SECONDS = 25  # enough scrapes for every rate() and recording rule to draw a line


@dataclass
class Run:
    prometheus: PrometheusProcess
    start: float
    out: Path
    data: ReportData
    firing: set[str]  # alert names Prometheus had firing when the report was written


@pytest.fixture(scope="module")
def regression_model() -> Iterator[str]:
    """A regression model with late labels: the workload's model is a classifier, and
    the regression panels (prediction value, absolute error, MAE) need numbers."""
    from modelmon import ModelMonitor

    registry = CollectorRegistry()
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    mon = ModelMonitor("price-estimator", version="1.4.0", framework="sklearn",
                       registry=registry)
    rng = random.Random(11)
    stop = threading.Event()

    def drive() -> None:
        n = 0
        while not stop.wait(0.05):
            n += 1
            ids = [f"p{n}-{i}" for i in range(8)]
            preds = [rng.uniform(50.0, 150.0) for _ in ids]
            mon.record_predictions(preds, request_ids=ids)
            for rid, pred in zip(ids, preds, strict=True):
                mon.record_feedback(rid, pred + rng.gauss(0.0, 5.0))

    driver = threading.Thread(target=drive, daemon=True)
    driver.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        stop.set()
        driver.join(5)
        mon.close()
        server.shutdown()
        thread.join(5)


@pytest.fixture(scope="module")
def alertmanager(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Alertmanager (one receiver that sends nothing) that Prometheus alerts."""
    tmp = tmp_path_factory.mktemp("alertmanager")
    config = tmp / "alertmanager.yml"
    config.write_text(yaml.safe_dump({"route": {"receiver": "none"},
                                      "receivers": [{"name": "none"}]}))
    port = free_port()
    with open(tmp / "alertmanager.log", "wb") as log:
        proc = subprocess.Popen(
            [binary("prometheus-alertmanager"), f"--config.file={config}",
             f"--storage.path={tmp / 'data'}", f"--web.listen-address=127.0.0.1:{port}",
             "--cluster.listen-address="],  # no gossip port: a single loopback instance
            stdout=log, stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http_ok(url + "/-/ready", 30, proc)
        yield url
    finally:
        stop_process(proc)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory, workload: Workload,
        regression_model: str, alertmanager: str) -> Iterator[Run]:
    tmp = tmp_path_factory.mktemp("report")
    rules = tmp / "modelmon.rules.yml"
    rules.write_text(render_all(thresholds_from_mapping(FAST_ALERTS))["modelmon.rules.yml"])
    config = prometheus_config([*workload.targets, regression_model], scrape_interval="1s",
                               job="modelmon")
    config["rule_files"] = [str(rules)]
    config["alerting"] = {"alertmanagers": [
        {"static_configs": [{"targets": [alertmanager.removeprefix("http://")]}]}]}
    with running_prometheus(config, workdir=tmp / "prometheus",
                            extra_args=["--web.enable-remote-write-receiver"]) as prom, \
            _edge_agent(prom.url, tmp):
        start = time.time()
        prom.wait_for("modelmon_feedback_total", timeout=30)
        prom.wait_for("modelmon_edge_link_up", timeout=30)
        prom.wait_for('ALERTS{alertstate="firing"}', timeout=30)
        time.sleep(max(0.0, start + RUN_SECONDS - time.time()))
        out = tmp / "report.html"
        data = write_report(prom.url, out, since_seconds=time.time() - start + 5,
                            alertmanager_url=alertmanager)
        firing = {a["metric"]["alertname"] for a in prom.query('ALERTS{alertstate="firing"}')}
        yield Run(prom, start, out, data, firing)


def _prometheus_panels() -> list[tuple[str, str]]:
    """(dashboard title, panel title) of every dashboard panel with a Prometheus target."""
    return [
        (dash["title"], panel["title"])
        for dash in (json.loads(t) for t in render_dashboards().values())
        for _, panel in json_panels(dash)
        if any((t.get("datasource") or {}).get("type") == "prometheus" for t in panel["targets"])
    ]


def test_report_has_every_dashboard_panel_and_the_alerts(run: Run) -> None:
    data = run.data
    shown = [(p.panel.dashboard, p.panel.title) for d in data.dashboards for p in d.panels]
    expected = [(d, t.replace("$drift_method", "psi")) for d, t in _prometheus_panels()]
    assert shown == expected
    assert not [e for d in data.dashboards for p in d.panels for e in p.errors]
    allowed = {title for _, title in ALLOWLIST}
    empty = [p.panel.title for p in data.empty_panels()]
    assert set(empty) <= allowed, f"panels without data: {sorted(set(empty) - allowed)}"
    # Every alert Prometheus had firing is in the report, still firing at its end.
    ongoing = {a.name for a in data.alerts if a.state == "firing" and a.ongoing}
    assert run.firing and run.firing <= ongoing, (run.firing, ongoing)
    # Alertmanager got them from Prometheus: the report lists what it held.
    assert data.active_alerts and {a.name for a in data.active_alerts} <= {
        a.name for a in data.alerts if a.state == "firing"}
    assert all(a.starts_at.startswith("20") for a in data.active_alerts)


def test_report_renders_in_headless_chromium(run: Run) -> None:
    with open_page(run.out.as_uri(), width=1400, height=1000) as page:
        page.wait_until(
            "document.querySelectorAll('.chart').length > 0 && "
            "document.querySelectorAll('.chart').length === "
            "document.querySelectorAll('.chart.js-plotly-plot').length", timeout=180)
        charts = page.evaluate("""
            [...document.querySelectorAll('.chart')].map(el => ({
              id: el.id,
              title: (el.closest('section') || el).querySelector('h4')?.textContent || el.id,
              traces: el.data.length,
              points: el.data.reduce((n, t) => n + t.y.filter(v => v !== null).length, 0),
              drawn: [...el.querySelectorAll('path.js-line, path.point, .bars path')]
                       .filter(p => (p.getAttribute('d') || '').length > 4).length,
            }))""")
        no_data = page.evaluate(
            "[...document.querySelectorAll('.nodata')].map(el => "
            "el.closest('section').querySelector('h4').textContent)")
        png = page.screenshot(scale=0.5)
        console_errors, fetched = page.console_errors, page.requests
    assert not console_errors, console_errors
    # Self-contained: the page itself is the only thing the browser loaded.
    assert [u for u in fetched if not u.startswith(("file:", "data:", "about:"))] == []
    with_data = run.data.panel_count() - len(run.data.empty_panels())
    assert len(charts) == with_data + 1  # + the alerts timeline
    blank = [c for c in charts if not (c["traces"] and c["points"] and c["drawn"])]
    assert not blank, f"charts without drawn data: {blank}"
    assert sorted(no_data) == sorted(p.panel.title for p in run.data.empty_panels())
    width, height, bpp, rows = png_pixels(png)
    assert (width, height) == (700, 500)
    colours = {row[i:i + 3] for row in rows[::2] for i in range(0, len(row), 2 * bpp)}
    assert len(colours) > 20, f"screenshot looks blank: {len(colours)} colours"


def test_report_narrowed_to_one_model(run: Run, tmp_path: Path) -> None:
    """--model narrows every panel as the dashboards' variable does."""
    from modelmon.cli import main

    out = tmp_path / "scorer.html"
    assert main(["report", "--prometheus", run.prometheus.url, "--out", str(out),
                 "--since", f"{int(time.time() - run.start) + 5}s", "--model", "scorer"]) == 0
    assert out.stat().st_size > 1_000_000  # plotly.js inlined
    data = write_report(run.prometheus.url, tmp_path / "again.html",
                        since_seconds=time.time() - run.start + 5, model="scorer")
    models = {line.series.labels["model"] for d in data.dashboards for p in d.panels
              for line in p.lines if "model" in line.series.labels}
    assert models == {"scorer"}
    calls = next(p for d in data.dashboards for p in d.panels
                 if p.panel.title == "Inference calls by outcome")
    assert calls.lines and 'model=~"scorer"' in calls.queries[0]


def test_report_narrowed_to_one_device(run: Run, tmp_path: Path) -> None:
    """--device keeps the device's series; the cloud models' (no device label) go."""
    data = write_report(run.prometheus.url, tmp_path / "device.html",
                        since_seconds=time.time() - run.start + 5, device="press-line-7")
    by_title = {p.panel.title: p for d in data.dashboards for p in d.panels}
    assert by_title["Link up"].lines
    # Panels whose every selector takes the device variable (not the recording-rule
    # panels, which Grafana's device variable does not narrow either) lose the
    # cloud models, which are scraped and so have no device label.
    narrowed = [p for p in by_title.values()
                if all('device=~"press-line-7"' in m
                       for q in p.queries for m in re.findall(r"\{[^}]*\}", q))]
    assert len(narrowed) > 30
    cloud = {"fraud-detector", "scorer", "price-estimator"}
    models = {line.series.labels.get("model") for p in narrowed for line in p.lines}
    assert not models & cloud, models
    devices = {line.series.labels.get("device") for p in by_title.values() for line in p.lines}
    assert devices <= {"press-line-7", None} and "press-line-7" in devices


def test_unreachable_prometheus_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from modelmon.cli import main
    from modelmon.demo.processes import free_port

    url = f"http://127.0.0.1:{free_port()}"
    assert main(["report", "--prometheus", url, "--out", str(tmp_path / "r.html")]) == 2
    err = capsys.readouterr().err
    assert f"cannot reach Prometheus at {url} (--prometheus)" in err
    assert not (tmp_path / "r.html").exists()


def test_a_url_that_is_not_prometheus_is_named(
    workload: Workload, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from modelmon.cli import main

    url = f"http://{workload.targets[0]}"  # the workload's Flask app
    assert main(["report", "--prometheus", url, "--out", str(tmp_path / "r.html")]) == 2
    assert "is --prometheus the URL of a Prometheus server?" in capsys.readouterr().err


def test_an_unreachable_alertmanager_is_shown_not_fatal(run: Run, tmp_path: Path) -> None:
    from modelmon.demo.processes import free_port

    am = f"http://127.0.0.1:{free_port()}"
    out = tmp_path / "r.html"
    data = write_report(run.prometheus.url, out, since_seconds=60, alertmanager_url=am)
    assert data.active_alerts is None and data.active_alerts_error
    assert f"cannot read alerts from Alertmanager at {am} (--alertmanager)" in out.read_text()
