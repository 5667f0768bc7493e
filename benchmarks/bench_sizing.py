"""Sizing: what a fleet costs one Prometheus, measured at three sizes (issue 14, D5).

    .venv/bin/python benchmarks/bench_sizing.py [--sizes small,medium,large] [--seconds 40]

Each size is models x drift features x replicas x edge devices. Every replica is
a real ``ModelMonitor`` with its own registry, served on its own loopback port
by ``modelmon.exposition.metrics_app`` (what ``instrument_app`` and ``modelmon
serve`` serve) and scraped by the Debian Prometheus every 10 s; every device is
a ``ModelMonitor`` whose registry goes through the edge agent's sample stream
(``DeviceView`` + ``SampleStream``: the ``device`` label, snappy
``WriteRequest`` records) to the same Prometheus's remote_write receiver every
10 s. Every monitor sees 20 rows per interval. Prometheus evaluates the
generated rule groups (default windows 1h and 1d) every 10 s. After ``--seconds`` the script reads:

- exposition: bytes of one replica's /metrics (OpenMetrics, as Prometheus asks);
- scrape: ``scrape_duration_seconds`` and ``scrape_samples_scraped`` per target;
- series: ``prometheus_tsdb_head_series``, raw and recorded;
- rules: the drift group's ``evaluationTime`` and that of every group together;
- memory: the Prometheus process's RSS.

The predicted series counts (formulas of docs/scaling.md) are printed next to
the measured ones; their constant parts are taken from the first size. The windows hold only the run's seconds: rule evaluation
time here is the per-series part; the per-sample part of a full window is in
``bench_fleet_rules.py``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import numpy as np
import pandas as pd
import requests
import yaml
from prometheus_client import CollectorRegistry

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _table import format_ns

from modelmon import ModelMonitor
from modelmon.alerting import rule_groups, thresholds_from_mapping
from modelmon.demo.processes import free_port, prometheus_config, running_prometheus
from modelmon.exporters.edge.stream import DeviceView, SampleStream
from modelmon.exporters.quality import Profile
from modelmon.exposition import metrics_app

INTERVAL = 10  # scrape, push and rule interval (scrape timeout 10 s)
BINS = 10  # the profile default
OPENMETRICS = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"
WRITE_HEADERS = {"Content-Encoding": "snappy", "Content-Type": "application/x-protobuf",
                 "X-Prometheus-Remote-Write-Version": "0.1.0"}


@dataclass(frozen=True)
class Size:
    name: str
    models: int
    features: int
    replicas: int  # per model
    devices: int  # in all, device d runs model d % models


SIZES = {
    "small": Size("small", 1, 10, 2, 2),
    "medium": Size("medium", 3, 25, 3, 5),
    "large": Size("large", 6, 50, 3, 10),
}


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def _profile(model: str, features: int, rng: np.random.Generator) -> tuple[Profile, pd.DataFrame]:
    rows = 2_000
    data = pd.DataFrame({f"f{i}": rng.normal(i, 1 + i % 3, rows) for i in range(features)})
    predictions = np.where(rng.random(rows) < 0.3, "reject", "approve")
    scores = rng.beta(5, 2, rows)
    profile = Profile.from_data(data, model=model, predictions=predictions, scores=scores,
                                task="classification", top_k=features)
    return profile, data


def _monitor(model: str, profile: Profile, data: pd.DataFrame) -> ModelMonitor:
    monitor = ModelMonitor(model, "1", registry=CollectorRegistry(), profile=profile,
                           max_series=100_000,
                           quality_options={"window": 10_000, "feedback_db": ":memory:"})
    batch = data.iloc[:200]
    monitor.check_inputs(batch)
    monitor.record_predictions(np.where(batch["f0"] > 0, "approve", "reject"),
                               scores=np.full(len(batch), 0.8))
    return monitor


def _traffic_and_push_loop(url: str, monitors: list[tuple[ModelMonitor, pd.DataFrame]],
                           streams: list[SampleStream], stop: threading.Event,
                           failures: list[str]) -> None:
    session = requests.Session()
    rows = 0
    while not stop.is_set():
        now = time.time()
        for monitor, data in monitors:
            batch = data.iloc[rows % 1_000:rows % 1_000 + 20]
            monitor.check_inputs(batch)
            monitor.record_predictions(np.where(batch["f0"] > 0, "approve", "reject"),
                                       scores=np.full(len(batch), 0.8))
        rows += 20
        for stream in streams:
            for payload, _ in stream.collect(now):
                try:
                    session.post(url, data=payload, headers=WRITE_HEADERS,
                                 timeout=30).raise_for_status()
                except requests.RequestException as exc:
                    failures.append(str(exc))
        stop.wait(max(0.0, INTERVAL - (time.time() - now)))


# The per-feature parts of docs/scaling.md's formulas; the constant parts (service
# KPIs, histograms, prediction and score bins of this benchmark's two-class
# classifier) move with the catalog, so they are taken from the first size's
# measurement and the formulas predict the other sizes from it.
PREDICTION_BINS, SCORE_BINS = 3, 10
WINDOWS = 2  # the default quality.drift_windows: 1h, 1d


def per_feature() -> tuple[int, int]:
    """Series per drift feature: of a scraped process, of a remote-writing device."""
    return 3 * BINS + 11, 2 * BINS + 7


def predicted_series(size: Size, process_fixed: int, device_fixed: int) -> tuple[int, int, int]:
    """Raw series of the replicas, of the devices, and the drift rules' recorded series."""
    process_feature, device_feature = per_feature()
    per_process = process_fixed + size.features * process_feature
    per_device = device_fixed + size.features * device_feature
    p, s, w = PREDICTION_BINS, SCORE_BINS, WINDOWS
    recorded = (size.features * (2 * BINS + 1 + w * (3 * BINS + 4))
                + 2 * p + 1 + w * (3 * p + 3) + 2 * s + 1 + w * (3 * s + 4))
    return (size.models * size.replicas * per_process, size.devices * per_device,
            size.models * recorded)


def run_size(size: Size, seconds: float, work: Path) -> dict[str, float]:
    rng = np.random.default_rng(7)
    models = [_profile(f"m{m}", size.features, rng) for m in range(size.models)]
    servers: list[_Server] = []
    targets: list[str] = []
    monitors: list[tuple[ModelMonitor, pd.DataFrame]] = []
    for m, (profile, data) in enumerate(models):
        for _ in range(size.replicas):
            monitor = _monitor(f"m{m}", profile, data)
            monitors.append((monitor, data))
            port = free_port()
            server = make_server("127.0.0.1", port, metrics_app(monitor.metrics.registry),
                                 server_class=_Server, handler_class=_Quiet)
            threading.Thread(target=server.serve_forever, daemon=True).start()
            servers.append(server)
            targets.append(f"127.0.0.1:{port}")
    streams = []
    for d in range(size.devices):
        profile, data = models[d % size.models]
        monitor = _monitor(f"m{d % size.models}", profile, data)
        monitors.append((monitor, data))
        streams.append(SampleStream(DeviceView([monitor.metrics.registry],
                                               {"device": f"device-{d}"}), 5_000))
    work.mkdir(parents=True, exist_ok=True)
    config = thresholds_from_mapping({"evaluation_interval": f"{INTERVAL}s"})
    (work / "rules.yml").write_text(yaml.safe_dump({"groups": rule_groups(config)}))
    prom_config = prometheus_config(targets, scrape_interval=f"{INTERVAL}s", job="replicas",
                                    extra={"rule_files": [str(work / "rules.yml")]})
    stop = threading.Event()
    failures: list[str] = []
    try:
        with running_prometheus(prom_config, workdir=work / "prom",
                                extra_args=["--web.enable-remote-write-receiver"]) as prom:
            pusher = threading.Thread(target=_traffic_and_push_loop, args=(
                f"{prom.url}/api/v1/write", monitors, streams, stop, failures), daemon=True)
            pusher.start()
            time.sleep(seconds / 2)
            # Rule evaluation times: the median over the evaluations of the second half.
            drift_times: dict[str, float] = {}
            all_times: dict[str, float] = {}
            deadline = time.monotonic() + seconds / 2
            while time.monotonic() < deadline:
                groups = requests.get(f"{prom.url}/api/v1/rules", timeout=30).json()["data"]["groups"]
                drift = next(g for g in groups if g["name"] == "modelmon.drift.recording")
                drift_times[drift["lastEvaluation"]] = drift["evaluationTime"]
                all_times[drift["lastEvaluation"]] = sum(g["evaluationTime"] for g in groups)
                time.sleep(1)
            body = requests.get(f"http://{targets[0]}/metrics", timeout=30,
                                headers={"Accept": OPENMETRICS}).content
            text = requests.get(f"http://{targets[0]}/metrics", timeout=30).content

            def one(q: str) -> float:
                result = prom.query(q)
                return float(result[0]["value"][1]) if result else float("nan")

            stop.set()
            pusher.join(timeout=60)
            tsdb = requests.get(f"{prom.url}/api/v1/status/tsdb", timeout=30).json()["data"]
            rss = int(next(line.split()[1] for line in
                           Path(f"/proc/{prom.proc.pid}/status").read_text().splitlines()
                           if line.startswith("VmRSS:"))) * 1024
            return {
                "exposition_bytes": len(body),
                "exposition_text_bytes": len(text),
                "scrape_avg": one('avg(scrape_duration_seconds{job="replicas"})'),
                "scrape_max": one('max(scrape_duration_seconds{job="replicas"})'),
                "samples_per_replica": one('avg(scrape_samples_scraped{job="replicas"})'),
                "head_series": tsdb["headStats"]["numSeries"],
                "raw_replica_series": one('count({__name__=~"modelmon_.+", job="replicas"})'),
                "raw_device_series": one('count({__name__=~"modelmon_.+", device!=""})'),
                "recorded_drift_series": one('count({__name__=~"modelmon:(feature|prediction|score)_.+"})'),
                "drift_eval": statistics.median(drift_times.values()),
                "all_rules_eval": statistics.median(all_times.values()),
                "evaluations": len(drift_times),
                "prometheus_rss": rss,
                "up": one('sum(up{job="replicas"})'),
                "targets": len(targets),
                "push_failures": len(failures),
            }
    finally:
        stop.set()
        for server in servers:
            server.shutdown()
            server.server_close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="small,medium,large")
    parser.add_argument("--seconds", type=float, default=60.0,
                        help="time each size runs before it is measured (>= 4 scrapes)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="modelmon-sizing-"))
    header = ("size (models x features x replicas/model x devices)", "processes", "exposition",
              "scrape avg/max", "series raw: replicas + devices (formula)", "recorded drift (formula)", "head series",
              "drift rules / all rules", "Prometheus RSS")
    rows = [header]
    fixed: tuple[int, int] | None = None
    for name in args.sizes.split(","):
        size = SIZES[name]
        started = time.monotonic()
        r = run_size(size, args.seconds, work / name)
        processes = size.models * size.replicas + size.devices
        if fixed is None:
            process_feature, device_feature = per_feature()
            fixed = (round(r["samples_per_replica"]) - size.features * process_feature,
                     round(r["raw_device_series"]) // size.devices - size.features * device_feature)
            print(f"constant parts from {name}: {fixed[0]} series per process, "
                  f"{fixed[1]} per device", file=sys.stderr)
        replicas_p, devices_p, recorded_p = predicted_series(size, *fixed)
        rows.append((
            f"{name}: {size.models} x {size.features} x {size.replicas} x {size.devices}",
            str(processes),
            f"{r['exposition_bytes'] / 1024:.0f} KiB ({r['samples_per_replica']:.0f} samples)",
            f"{format_ns(r['scrape_avg'] * 1e9)} / {format_ns(r['scrape_max'] * 1e9)}",
            f"{r['raw_replica_series']:.0f} ({replicas_p}) + {r['raw_device_series']:.0f} ({devices_p})",
            f"{r['recorded_drift_series']:.0f} ({recorded_p})",
            f"{r['head_series']:.0f}",
            f"{format_ns(r['drift_eval'] * 1e9)} / {format_ns(r['all_rules_eval'] * 1e9)}",
            f"{r['prometheus_rss'] / 2**20:.0f} MiB",
        ))
        print(f"{name}: {time.monotonic() - started:.0f} s, {r['up']:.0f}/{r['targets']} targets up, "
              f"rules: median of {r['evaluations']:.0f} evaluations, "
              f"{r['push_failures']:.0f} device pushes failed, "
              f"load average {os.getloadavg()[0]:.1f}, "
              f"text format {r['exposition_text_bytes'] / 1024:.0f} KiB", file=sys.stderr)
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    print("fleet sizing (one Prometheus 2.42, this machine)")
    for i, row in enumerate(rows):
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)))
        if i == 0:
            print("  ".join("-" * w for w in widths))
    return 0


if __name__ == "__main__":
    sys.exit(main())
