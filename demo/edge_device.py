"""One demo edge device: a small model of its own and the edge agent, in one process.

``python -m modelmon.demo.edge_device --config edge.yaml --control control.json``
runs the same ``EdgeAgent`` as ``modelmon edge run --config edge.yaml`` (the
agent module's documented embedding: the ModelMonitor shares the agent's
registry, so the device's model KPIs are spooled and remote-written with its
own), and serves a tiny numpy classifier to a local synthetic client. The demo
writes ``control.json`` ({"fault_rate": 0.6}) to make the model fail.
"""

from __future__ import annotations

import argparse
import json
import signal
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
from prometheus_client import CollectorRegistry

MODEL_NAME = "vibration-anomaly"
MODEL_VERSION = "0.3.0"


class TinyModel:
    """Logistic regression with fixed weights over four vibration features."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.weights = np.array([1.2, -0.7, 0.4, 0.9])

    def inputs(self, n: int) -> np.ndarray:
        return self.rng.normal(0, 1, size=(n, 4))

    def predict(self, x: np.ndarray) -> np.ndarray:
        scores: np.ndarray = 1 / (1 + np.exp(-(x @ self.weights)))
        return scores


def _fault_rate(control: Path) -> float:
    try:
        return float(json.loads(control.read_text()).get("fault_rate", 0.0))
    except (OSError, ValueError, AttributeError):
        return 0.0


def serve(config_path: Path, control: Path, rps: float) -> int:
    from modelmon.exporters.edge import EdgeAgent, load_edge_config
    from modelmon.exporters.service.monitor import ModelMonitor

    config = load_edge_config(config_path)
    registry = CollectorRegistry()
    mon = ModelMonitor(MODEL_NAME, version=MODEL_VERSION, framework="numpy",
                       task="classification", registry=registry)
    agent = EdgeAgent(config, registry)
    model = TinyModel(seed=sum(map(ord, config.device_id)))
    done = threading.Event()

    def _stop(signum: int, _frame: Any) -> None:
        done.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _stop)
    agent.start()
    if agent.listen_port is not None:  # the demo shows the URL (listen: ...:0 picks it)
        port_file = control.with_name("listen_port")
        port_file.with_suffix(".tmp").write_text(str(agent.listen_port))
        port_file.with_suffix(".tmp").replace(port_file)
    try:
        fault, checked = 0.0, 0.0
        while not done.wait(1.0 / rps):
            now = time.monotonic()
            if now - checked > 0.5:
                fault, checked = _fault_rate(control), now
            x = model.inputs(int(model.rng.integers(1, 5)))
            try:
                with mon.track(batch_size=len(x)):
                    if model.rng.random() < fault:
                        raise RuntimeError("simulated sensor read failure")
                    model.predict(x)
            except RuntimeError:
                pass
    finally:
        agent.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config", type=Path, required=True, help="the edge agent's config")
    parser.add_argument("--control", type=Path, required=True, help="JSON file: fault_rate")
    parser.add_argument("--rps", type=float, default=10.0, help="model calls per second")
    args = parser.parse_args(argv)
    return serve(args.config, args.control, args.rps)


if __name__ == "__main__":
    raise SystemExit(main())
