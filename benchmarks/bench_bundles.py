"""Configuration bundles on the edge device: what they cost the agent.

    .venv/bin/python benchmarks/bench_bundles.py

1. RSS of ``modelmon edge run`` (system collector) running a signed bundle's
   rules, against the same rules from a local file (goal <= 1.05x: bundles add
   no library to the agent; the signature is checked in a child process).
2. The signature check of a new bundle: in a child process (what the agent
   does) against in-process (what it would cost with ``cryptography`` loaded).
3. Checking and applying a bundle that holds the generated rule file
   (``alert_rules/modelmon.rules.yml``): hashes, YAML, every rule compiled,
   the groups swapped into a rule runner.
4. A poll that finds the bundle unchanged (``If-None-Match`` -> 304) on loopback.
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import yaml

from modelmon.exporters.edge.bundles import build_bundle, bundle_app, read_bundle
from modelmon.exporters.edge.bundles.manager import BundleManager
from modelmon.exporters.edge.bundles.signing import (
    generate_keypair,
    key_verifier,
    load_private_key,
    load_public_key,
    sign,
    subprocess_verifier,
)
from modelmon.exporters.edge.bundles.telemetry import BundleMetrics
from modelmon.exporters.edge.config import BundleConfig
from modelmon.exporters.edge.http_server import serve
from modelmon.exporters.edge.rules.runner import EdgeRuleRunner

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _table import Row, format_ns, print_table

RULES = Path(__file__).resolve().parents[1] / "alert_rules" / "modelmon.rules.yml"
DEVICE_RULES = """
groups:
  - name: device
    rules:
      - record: device:cpu_utilization:max
        expr: max(modelmon_system_cpu_utilization_ratio)
      - alert: DeviceBusy
        expr: max(modelmon_system_cpu_utilization_ratio) > 0.95
        for: 5m
"""


def agent_rss(root: Path, name: str, extra: dict[str, object]) -> float:
    """Peak RSS (MiB) over 2 s of an agent that has run for 8 s."""
    workdir = root / name
    workdir.mkdir()
    config = {"edge": {"device_id": "bench", "interval": "1s", "listen": None,
                       "collectors": ["system"], "spool": {"path": str(workdir / "state")},
                       "remote_write": {"url": "http://127.0.0.1:9/api/v1/write"}, **extra}}
    (workdir / "edge.yaml").write_text(yaml.safe_dump(config))
    proc = subprocess.Popen([sys.executable, "-m", "modelmon", "edge", "run", "--config",
                             str(workdir / "edge.yaml")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(8)
        rss = 0.0
        for _ in range(10):
            rss = max(rss, psutil.Process(proc.pid).memory_info().rss / 2**20)
            time.sleep(0.2)
        return rss
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def median_ns(fn: object, runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter_ns()
        fn()  # type: ignore[operator]
        times.append(time.perf_counter_ns() - start)
    return statistics.median(times)


def main() -> int:
    root = Path(tempfile.mkdtemp(prefix="bench-bundles-"))
    rows: list[Row] = []
    try:
        generate_keypair(root / "fleet.key", root / "fleet.pub")
        key = load_private_key(root / "fleet.key")
        src = root / "src"
        (src / "rules").mkdir(parents=True)
        (src / "rules" / "device.yml").write_text(DEVICE_RULES)
        (src / "bundle.yml").write_text("version: '1'\nrules: [rules/*.yml]\n"
                                        "models: {fraud: '3.2.0'}\n")
        published = root / "published"
        published.mkdir()
        (published / "site.tar.gz").write_bytes(build_bundle(src, key=key))
        httpd = serve("127.0.0.1", 0, bundle_app(published))
        url = f"http://127.0.0.1:{httpd.server_port}/site.tar.gz"

        (root / "device.yml").write_text(DEVICE_RULES)
        local = agent_rss(root, "local", {"rules": [str(root / "device.yml")]})
        bundled = agent_rss(root, "bundle", {"bundle": {
            "url": url, "public_key": str(root / "fleet.pub"), "poll_interval": "1s"}})
        rows.append(("agent RSS: signed bundle vs the same rules from a file",
                     f"{bundled:.1f} MiB", f"{local:.1f} MiB", bundled / local, "<= 1.05x",
                     bundled / local <= 1.05))

        data = b"x" * 2000
        signature = sign(key, data)
        child = median_ns(lambda: subprocess_verifier(root / "fleet.pub")(signature, data), 5)
        inproc = median_ns(lambda: key_verifier(load_public_key(root / "fleet.pub"))(
            signature, data), 50)
        rows.append(("signature check of a new bundle: child process vs in-process",
                     format_ns(child), format_ns(inproc), child / inproc, "-", None))

        big = root / "generated"
        (big / "rules").mkdir(parents=True)
        shutil.copy(RULES, big / "rules" / "modelmon.rules.yml")
        (big / "bundle.yml").write_text("version: '2'\nrules: [rules/*.yml]\n")
        generated = build_bundle(big, key=key)
        # The cloud file reads up to 30 days: far more than a device should keep
        # (edge.rules_max_range), but it is the biggest bundle there is to check.
        runner = EdgeRuleRunner([], 10.0, {"device": "bench"}, max_range_ms=31 * 86_400_000)

        def apply() -> None:
            bundle = read_bundle(generated, None, require_signature=False)
            runner.replace_groups(bundle.rule_groups, 10.0)

        groups = len(read_bundle(generated, None, require_signature=False).rule_groups)
        applied = median_ns(apply, 10)
        rows.append((f"check + apply the generated rules ({groups} groups, "
                     f"{len(generated) // 1024} KiB), without the signature",
                     format_ns(applied), "-", 1.0, "-", None))

        from prometheus_client import CollectorRegistry

        manager = BundleManager(
            BundleConfig(url=url, public_key=root / "fleet.pub"), root / "state",
            BundleMetrics(CollectorRegistry(), "modelmon_", "bench"), lambda b: None)
        assert manager.pull() == "applied"
        unchanged = median_ns(lambda: manager.pull(), 50)
        rows.append(("poll of an unchanged bundle (304 on loopback)", format_ns(unchanged), "-",
                     1.0, "-", None))
        httpd.shutdown()
        httpd.server_close()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    ok = print_table(rows, "Configuration bundles on the edge agent")
    print(f"load average {psutil.getloadavg()[0]:.1f}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
