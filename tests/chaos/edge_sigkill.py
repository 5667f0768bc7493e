"""Chaos: SIGKILL the edge agent >= 100 times during outages and backfills.

    .venv/bin/python tests/chaos/edge_sigkill.py [--iterations 50]

Each iteration kills the agent twice (once during an outage of the real
Prometheus receiver, once while it backfills), so 50 iterations = 100 kills.
Prints a report and exits 1 if a spooled sample is missing from Prometheus,
the spool saw corruption, or the agent failed to come back.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests folder: support.*

from support.edge_harness import Agent, Receiver, sigkill_rounds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=50, help="rounds of two kills (default 50)")
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="modelmon-edge-chaos-"))
    receiver = Receiver(work / "prometheus")
    receiver.start()
    agent = Agent(work / "agent", receiver.write_url, device="edge-chaos")
    start = time.monotonic()
    try:
        report = sigkill_rounds(receiver, agent, args.iterations, random.Random(args.seed),
                                log=lambda line: print(line, flush=True))
    finally:
        agent.stop()
        receiver.stop()
    report["seconds"] = round(time.monotonic() - start, 1)
    report["workdir"] = str(work)
    print(json.dumps(report, indent=2))
    ok = report["missing"] == 0 and report["corrupt"] == 0
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
