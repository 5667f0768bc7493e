"""A real Prometheus scrapes a model server's quality KPIs: every quality and feedback KPI
arrives with the catalog's type and labels, and drift values survive the trip."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from wsgiref.simple_server import WSGIRequestHandler, make_server

import numpy as np
import pandas as pd
import pytest
from prometheus_client import CollectorRegistry, make_wsgi_app

from modelmon.catalog import in_groups
from modelmon.demo.processes import free_port, prometheus_config, running_prometheus
from modelmon.exporters.quality import Profile
from modelmon.exporters.service.monitor import ModelMonitor

pytestmark = pytest.mark.integration


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def exporter(registry: CollectorRegistry) -> Iterator[str]:
    port = free_port()
    server = make_server("127.0.0.1", port, make_wsgi_app(registry), handler_class=_Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{port}"
    server.shutdown()
    server.server_close()


def test_every_quality_kpi_reaches_prometheus(
    registry: CollectorRegistry, exporter: str, prometheus_binary: str, tmp_path: Path
) -> None:
    rng = np.random.default_rng(0)
    train = pd.DataFrame({"x": rng.normal(size=2000), "c": rng.choice(["a", "b"], 2000)})
    clf = Profile.from_data(train, predictions=rng.choice(["yes", "no"], 2000),
                            scores=rng.uniform(size=2000))
    mon = ModelMonitor("clf", "1", registry=registry, profile=clf,
                       quality_options={"window": 500, "feedback_db": str(tmp_path / "fb.sqlite")})
    live = pd.DataFrame({"x": rng.normal(2, 1, 500), "c": rng.choice(["a", "z"], 500)})
    mon.check_inputs(live)
    mon.check_inputs({"x": "bad", "c": None, "extra": 1})
    mon.record_predictions(["yes", "no"], scores=[0.9, 0.6], request_ids=["r1", "r2"])
    mon.record_feedback("r1", "yes")
    mon.record_feedback("r2", "yes")
    mon.record_feedback("r3", "yes")
    reg = ModelMonitor("reg", "1", registry=registry, quality_options={"task": "regression"})
    reg.record_predictions([1.0], request_ids=["q1"])
    reg.record_feedback("q1", 3.0)
    mon.quality.flush()
    reg.quality.flush()
    psi = mon.quality.drift()["x"]["psi"]

    with running_prometheus(prometheus_config([exporter]), workdir=tmp_path / "prom",
                            binary=prometheus_binary) as prom:
        prom.wait_for('modelmon_feature_drift{feature="x",method="psi"}')
        for kpi in in_groups(["quality", "feedback"]):
            name = kpi.full_name() + ("_bucket" if kpi.type == "histogram" else "")
            result = prom.wait_for(name, timeout=15)
            labels = set(result[0]["metric"]) - {"__name__", "instance", "job"}
            expected = set(kpi.labels) | ({"le"} if kpi.type == "histogram" else set())
            assert labels == expected, (kpi.name, labels, expected)
        value = float(prom.query('modelmon_feature_drift{feature="x",method="psi"}')[0]["value"][1])
        assert value == pytest.approx(psi) and value > 0.25
        accuracy = prom.query('modelmon_feedback_accuracy{model="clf"}')
        assert float(accuracy[0]["value"][1]) == 0.5
