"""Reconnect after a regional outage: N edge agents into one receiver, paced vs unpaced.

    .venv/bin/python benchmarks/bench_reconnect.py [--agents 20] [--series 300]
        [--outage 1800] [--interval 10] [--jitter 30] [--rate 20000]
        [--receiver prometheus|victoriametrics] [--vm-max-concurrent-inserts 2]

Each agent is its own process (``EdgeAgent``, the agent's own code; one
process each, as on a fleet: no shared GIL, no shared event loop). Before the
start each one spools the outage's backlog through its own collection path
(``collect_once`` at past timestamps, ``--interval`` apart over ``--outage``
seconds, ``--series`` gauges plus the agent's own KPIs): 30 minutes of
backlog without waiting 30 minutes. Then every agent starts its sender (and
its collector: live samples) at the same instant, pointing at one real
receiver started fresh for each mode: the Debian Prometheus with the
remote-write receiver and a 2 h out-of-order window, or VictoriaMetrics.

* **paced**: ``reconnect_jitter`` (--jitter), ``backfill_rate_limit``
  (--rate, the shipped default 20,000 samples/s), ``order: live_first``;
* **unpaced**: no jitter, no rate limit, ``order: fifo``.

Measured: time from the start until every backlog sample is stored (each
agent's spool saw every backlog record acknowledged; the receiver's count
checked after), the receiver's peak ingest rate (its own counter of
samples appended, over ~1 s windows), its peak CPU (psutil, % of one
core, every 0.1 s) and its CPU seconds, the answers other than 2xx (Prometheus does not
rate-limit: it answers 2xx or 5xx when it cannot keep up;
VictoriaMetrics with a low ``-maxConcurrentInserts`` and a short
``-insert.maxQueueDuration`` answers 503 when busy), and how soon after the
start each agent's first live collection is stored.

On one machine the agents share its cores with the receiver: an unpaced
fleet can only stampede as fast as its own processes get CPU, so the
receiver's CPU is capped by the contention and is informational here; the
receiver's ingest peak (what a fleet with a CPU per device multiplies) and
the live delay carry the goals.
"""

from __future__ import annotations

import argparse
import collections
import json
import queue
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, TextIO

import psutil
import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # support.*
from _table import print_table

from modelmon.demo.processes import stop_process
from support.edge_harness import Receiver, receiver_config
from support.victoriametrics import VictoriaMetrics

METRIC = "bench_series"


# -- one agent (a child process) ---------------------------------------------------------


def run_agent(args: argparse.Namespace) -> None:
    """Spool the outage's backlog, say ``ready``, start on ``go``, report on stdout."""
    import logging

    from prometheus_client import CollectorRegistry, Gauge

    from modelmon.exporters.edge import EdgeAgent, edge_config_from_mapping
    from modelmon.spool.destination import Batch, SendResult

    # Twenty agents' retry warnings would bury the table; the answers are counted below.
    logging.getLogger("modelmon").setLevel(logging.ERROR)
    registry = CollectorRegistry()
    gauge = Gauge(METRIC, "Benchmark series.", ["series"], registry=registry)
    for i in range(args.series):
        gauge.labels(str(i)).set(i)
    paced = args.mode == "paced"
    remote_write: dict[str, Any] = {
        "url": args.url,
        "order": "live_first" if paced else "fifo",
        "backfill_rate_limit": args.rate if paced else None,
        "reconnect_jitter": f"{args.jitter}s" if paced else 0,
    }
    config = edge_config_from_mapping({"edge": {
        "device_id": args.device, "interval": args.interval, "listen": None, "collectors": [],
        "spool": {"path": args.state, "max_age": "1d"}, "remote_write": remote_write}})
    agent = EdgeAgent(config, registry)
    start = time.time() - args.outage
    for i in range(int(args.outage / args.interval)):
        agent.collect_once(now=start + i * args.interval)
    agent.spool.flush_buffer()
    stats = agent.spool.stats()
    newest = agent.spool.peek(1, newest_first=True)
    last_backlog_seq = newest[0].seq if newest else 0
    backlog_left = stats.pending
    lock = threading.Lock()
    answers: collections.Counter[str] = collections.Counter()
    dropped = 0
    live_seen = False

    def say(line: str) -> None:
        with lock:
            print(line, flush=True)

    client = agent.client
    client_send = client.send

    def counted(body: bytes) -> Any:
        answer = client_send(body)
        with lock:
            answers["2xx" if answer.outcome == "success" else answer.reason] += 1
        return answer

    client.send = counted  # type: ignore[method-assign]
    destination = agent.sender.destination
    destination_send = destination.send

    def watched(batch: Batch) -> SendResult:
        nonlocal backlog_left, dropped, live_seen
        result = destination_send(batch)
        settled = result.delivered + [s for seqs in result.dropped.values() for s in seqs]
        dropped += sum(batch.item_count(seqs) for seqs in result.dropped.values())
        if not live_seen and any(s > last_backlog_seq for s in result.delivered):
            live_seen = True
            say(f"live {time.time()}")
        if backlog_left > 0:
            backlog_left -= sum(1 for s in settled if s <= last_backlog_seq)
            if backlog_left <= 0:
                say(f"drained {time.time()}")
        return result

    destination.send = watched  # type: ignore[method-assign]
    say(f"ready {stats.pending_items} {stats.pending}")
    if sys.stdin.readline().strip() != "go":
        return
    agent.start()
    sys.stdin.readline()  # "stop", or the parent went away
    agent.stop()
    with lock:
        print(f"done {json.dumps(dict(answers), separators=(',', ':'))} {dropped} "
              f"{agent.sender.reconnect.last:.3f}", flush=True)


# -- the receiver ----------------------------------------------------------------------


class VictoriaMetricsReceiver:
    """VictoriaMetrics single-node (tests/support/victoriametrics.py), optionally
    with a small insert concurrency."""

    def __init__(self, workdir: Path, max_concurrent_inserts: int | None) -> None:
        self._vm = VictoriaMetrics(workdir, extra_args=[] if max_concurrent_inserts is None else [
            f"-maxConcurrentInserts={max_concurrent_inserts}", "-insert.maxQueueDuration=100ms"])

    @property
    def url(self) -> str:
        return self._vm.url

    @property
    def write_url(self) -> str:
        return self._vm.write_url

    def start(self) -> None:
        self._vm.start()

    @property
    def pid(self) -> int:
        assert self._vm.proc is not None
        return self._vm.proc.pid

    metrics_url = property(lambda self: f"{self.url}/metrics")
    ingest_counter = 'vm_rows_inserted_total{type="promremotewrite"}'

    def stored(self, window: str) -> int:
        requests.get(f"{self.url}/internal/force_flush", timeout=30)
        return _count(f"{self.url}/api/v1/query", window)

    def stop(self) -> None:
        self._vm.stop()


class PrometheusReceiver:
    def __init__(self, workdir: Path) -> None:
        self._receiver = Receiver(workdir, config=receiver_config("2h"))

    @property
    def write_url(self) -> str:
        return self._receiver.write_url

    def start(self) -> None:
        self._receiver.start()

    @property
    def pid(self) -> int:
        assert self._receiver.prom is not None
        return self._receiver.prom.proc.pid

    metrics_url = property(lambda self: f"http://127.0.0.1:{self._receiver.port}/metrics")
    ingest_counter = "prometheus_tsdb_head_samples_appended_total"

    def stored(self, window: str) -> int:
        return _count(f"http://127.0.0.1:{self._receiver.port}/api/v1/query", window)

    def stop(self) -> None:
        self._receiver.stop()


def _count(query_url: str, window: str) -> int:
    answer = requests.get(query_url, timeout=60, params={
        "query": f"sum(count_over_time({METRIC}[{window}]))"}).json()
    result = answer["data"]["result"]
    return int(float(result[0]["value"][1])) if result else 0


# -- one mode: N agents at once ----------------------------------------------------------


class ReceiverSampler(threading.Thread):
    """The receiver's CPU every ``every`` s, and its ingest rate over 1 s
    windows from its own counter of samples appended (read every 0.5 s)."""

    def __init__(self, pid: int, metrics_url: str, counter: str, every: float = 0.1) -> None:
        super().__init__(daemon=True)
        self.proc = psutil.Process(pid)
        self.every = every
        self.metrics_url = metrics_url
        self.counter = counter
        self.ingested: list[tuple[float, float]] = []
        self.peak = 0.0
        self.done = threading.Event()
        self.proc.cpu_percent(None)
        self.cpu_start = sum(self.proc.cpu_times()[:2])
        self.cpu_seconds = 0.0
        self._read_counter()  # before the start

    def run(self) -> None:
        next_read = 0.0
        while not self.done.wait(self.every):
            self.peak = max(self.peak, self.proc.cpu_percent(None))
            if time.monotonic() >= next_read:
                next_read = time.monotonic() + 0.5
                self._read_counter()

    def _read_counter(self) -> None:
        try:
            text = requests.get(self.metrics_url, timeout=2).text
        except requests.RequestException:
            return
        total = sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                    if line.startswith(self.counter))
        self.ingested.append((time.monotonic(), total))

    @property
    def peak_ingest(self) -> float:
        """Samples/s, the highest over windows of about 1 s."""
        rates = []
        for i, a in enumerate(self.ingested[:-1]):
            # The window from ``a`` to the first reading 1 s later (or the last one).
            b = next((b for b in self.ingested[i + 1:] if b[0] - a[0] >= 1.0), self.ingested[-1])
            rates.append((b[1] - a[1]) / (b[0] - a[0]))
        return max(rates, default=0.0)

    def stop(self) -> None:
        self.done.set()
        self.join()
        self.peak = max(self.peak, self.proc.cpu_percent(None))  # the last partial window
        self._read_counter()
        self.cpu_seconds = sum(self.proc.cpu_times()[:2]) - self.cpu_start


def _reader(name: str, stream: TextIO, lines: queue.Queue[tuple[str, str]]) -> None:
    for line in stream:
        lines.put((name, line.strip()))


def run_mode(mode: str, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    receiver: PrometheusReceiver | VictoriaMetricsReceiver
    if args.receiver == "prometheus":
        receiver = PrometheusReceiver(work / f"{mode}-prometheus")
    else:
        receiver = VictoriaMetricsReceiver(work / f"{mode}-vm", args.vm_max_concurrent_inserts)
    receiver.start()
    lines: queue.Queue[tuple[str, str]] = queue.Queue()
    agents: dict[str, subprocess.Popen[str]] = {}
    result: dict[str, Any] = {"mode": mode}
    try:
        for k in range(args.agents):
            device = f"{mode}-{k:02d}"
            agents[device] = proc = subprocess.Popen(
                [sys.executable, __file__, "--child", "--mode", mode, "--device", device,
                 "--url", receiver.write_url, "--state", str(work / device),
                 "--series", str(args.series), "--outage", str(args.outage),
                 "--interval", str(args.interval), "--jitter", str(args.jitter),
                 "--rate", str(args.rate)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            assert proc.stdout is not None
            threading.Thread(target=_reader, args=(device, proc.stdout, lines),
                             daemon=True).start()
        backlog_samples = 0
        ready: set[str] = set()
        while len(ready) < len(agents):
            device, line = lines.get(timeout=300)
            if line.startswith("ready"):
                ready.add(device)
                backlog_samples += int(line.split()[1])
        result["backlog_samples"] = backlog_samples
        sampler = ReceiverSampler(receiver.pid, receiver.metrics_url, receiver.ingest_counter)
        sampler.start()
        go = time.time()
        for proc in agents.values():
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        drained: dict[str, float] = {}
        live: dict[str, float] = {}
        deadline = time.monotonic() + args.timeout
        while (len(drained) < len(agents) or len(live) < len(agents)) \
                and time.monotonic() < deadline:
            try:
                device, line = lines.get(timeout=1.0)
            except queue.Empty:
                continue
            kind, _, value = line.partition(" ")
            if kind == "drained":
                drained[device] = float(value) - go
            elif kind == "live":
                live[device] = float(value) - go
        sampler.stop()
        for proc in agents.values():
            assert proc.stdin is not None
            proc.stdin.write("stop\n")
            proc.stdin.flush()
        answers: collections.Counter[str] = collections.Counter()
        dropped, holds, done = 0, [], 0
        while done < len(agents):
            device, line = lines.get(timeout=60)
            if line.startswith("done"):
                _, counts, n, hold = line.split(" ", 3)
                answers.update(json.loads(counts))
                dropped += int(n)
                holds.append(float(hold))
                done += 1
        window = f"{int(args.outage + time.time() - go + 600)}s"
        result.update(
            drained=max(drained.values()) if len(drained) == len(agents) else None,
            drained_n=len(drained),
            live_median=sorted(live.values())[len(live) // 2] if live else None,
            live_max=max(live.values()) if len(live) == len(agents) else None,
            peak_cpu=sampler.peak, cpu_seconds=sampler.cpu_seconds,
            peak_ingest=sampler.peak_ingest,
            answers=dict(answers), dropped=dropped,
            holds=(min(holds), max(holds)) if holds else (0.0, 0.0),
            stored=receiver.stored(window),
            expected=args.agents * args.series * int(args.outage / args.interval),
        )
        return result
    finally:
        for proc in agents.values():
            if proc.poll() is None:
                stop_process(proc)  # type: ignore[arg-type]
        receiver.stop()


# -- the table ---------------------------------------------------------------------------


def _seconds(value: float | None) -> str:
    return "timeout" if value is None else f"{value:.1f} s"


def _ratio(ours: float | None, base: float | None) -> float:
    return ours / base if ours is not None and base else float("nan")


def _failures(answers: dict[str, int]) -> str:
    bad = {k: v for k, v in answers.items() if k != "2xx"}
    return ", ".join(f"{k}: {v}" for k, v in sorted(bad.items())) or "none"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=20)
    parser.add_argument("--series", type=int, default=300, help="gauges per agent")
    parser.add_argument("--outage", type=float, default=1800.0, help="seconds of backlog")
    parser.add_argument("--interval", type=float, default=10.0, help="collection interval, s")
    parser.add_argument("--jitter", type=float, default=30.0, help="paced: reconnect_jitter, s")
    parser.add_argument("--rate", type=float, default=20000.0,
                        help="paced: backfill_rate_limit, samples/s")
    parser.add_argument("--receiver", choices=("prometheus", "victoriametrics"),
                        default="prometheus")
    parser.add_argument("--vm-max-concurrent-inserts", type=int, default=None,
                        help="VictoriaMetrics -maxConcurrentInserts (queue 100 ms): 503s when busy")
    parser.add_argument("--timeout", type=float, default=180.0, help="per mode, s")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--mode", help=argparse.SUPPRESS)
    parser.add_argument("--device", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--state", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        run_agent(args)
        return 0
    work = Path(tempfile.mkdtemp(prefix="modelmon-bench-reconnect-"))
    started = time.monotonic()
    unpaced = run_mode("unpaced", args, work)
    paced = run_mode("paced", args, work)
    p, u = paced, unpaced
    title = (f"{args.agents} agents x {args.series} series at {args.interval:g} s, "
             f"{args.outage / 60:g} min outage ({u['backlog_samples']:,} backlog samples incl. "
             f"agent KPIs) into one {args.receiver}; paced = reconnect_jitter {args.jitter:g} s "
             f"+ backfill_rate_limit {args.rate:,.0f}/s + live_first (ours); unpaced = none + "
             "fifo (baseline)")
    rows = [
        ("time until every backlog sample is stored", _seconds(p["drained"]),
         _seconds(u["drained"]), _ratio(p["drained"], u["drained"]), "-", None),
        ("receiver peak CPU (% of one core, 0.1 s samples)", f"{p['peak_cpu']:.0f} %",
         f"{u['peak_cpu']:.0f} %", _ratio(p["peak_cpu"], u["peak_cpu"]), "-", None),
        ("receiver peak ingest (samples/s over ~1 s)", f"{p['peak_ingest']:,.0f}",
         f"{u['peak_ingest']:,.0f}", _ratio(p["peak_ingest"], u["peak_ingest"]), "< 1x",
         p["peak_ingest"] < u["peak_ingest"]),
        ("receiver CPU seconds until stored", f"{p['cpu_seconds']:.1f} s",
         f"{u['cpu_seconds']:.1f} s", _ratio(p["cpu_seconds"], u["cpu_seconds"]), "-", None),
        ("first live collection stored, median of agents", _seconds(p["live_median"]),
         _seconds(u["live_median"]), _ratio(p["live_median"], u["live_median"]), "< 1x",
         p["live_median"] is not None and u["live_median"] is not None
         and p["live_median"] < u["live_median"]),
        ("first live collection stored, slowest agent", _seconds(p["live_max"]),
         _seconds(u["live_max"]), _ratio(p["live_max"], u["live_max"]), "-", None),
        ("answers other than 2xx (429, 5xx, connection)", _failures(p["answers"]),
         _failures(u["answers"]), float("nan"), "-", None),
        (f"{METRIC} samples stored / backlog", f"{p['stored']:,} / {p['expected']:,}",
         f"{u['stored']:,} / {u['expected']:,}", _ratio(p["stored"], u["stored"]),
         ">= backlog", p["stored"] >= p["expected"] and u["stored"] >= u["expected"]),
        ("samples dropped by the agents", f"{p['dropped']:,}", f"{u['dropped']:,}",
         float("nan"), "0", p["dropped"] == 0 and u["dropped"] == 0),
    ]
    ok = print_table(rows, title)
    print(f"paced holds drawn: {p['holds'][0]:.1f} - {p['holds'][1]:.1f} s; "
          f"requests: paced {sum(p['answers'].values()):,}, unpaced "
          f"{sum(u['answers'].values()):,}; whole run {time.monotonic() - started:.0f} s")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
