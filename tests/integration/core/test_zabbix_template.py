"""The generated template in a real Zabbix 6.0: imported through the API, polling a live
modelmon endpoint, its discovered items receive the endpoint's values and its burn-rate
triggers fire for the model that burns its budget and only for it.

Zabbix (server, PostgreSQL, frontend API) comes from Debian's packages and runs on
loopback ports; see tests/support/zabbix_server.py. Most of the time goes to loading
Zabbix's database schema; the scenario itself takes about half a minute.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from wsgiref.simple_server import WSGIRequestHandler, make_server

import numpy as np
import pandas as pd
import pytest
from prometheus_client import CollectorRegistry, make_wsgi_app

from modelmon.demo.processes import free_port
from modelmon.exporters.quality import Profile
from modelmon.exporters.service.monitor import ModelMonitor
from modelmon.thresholds import ThresholdsConfig
from modelmon.zabbix import TEMPLATE_NAME, build_template, render_template
from support.zabbix_server import ZabbixStack, missing, zabbix_stack

pytestmark = [pytest.mark.integration, pytest.mark.long]

IMPORT_RULES = {
    "groups": {"createMissing": True},
    "templates": {"createMissing": True, "updateExisting": True},
    "items": {"createMissing": True, "updateExisting": True},
    "discoveryRules": {"createMissing": True, "updateExisting": True},
    "triggers": {"createMissing": True, "updateExisting": True},
    "graphs": {"createMissing": True, "updateExisting": True},
    "valueMaps": {"createMissing": True, "updateExisting": True},
}


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@dataclass
class Endpoint:
    url: str
    psi_x: float  # the drift of feature x of model clf, as the monitor computed it


@pytest.fixture
def model_server(tmp_path: Path) -> Iterator[Endpoint]:
    """Three models behind one /metrics. With traffic: fraud fails 25% of its calls, churn
    is slow (0.8 s, over the 0.5 s latency objective); neither does both. clf's input x
    has drifted (PSI > 0.25 over a full window of 500 rows) and it has 2 feedback labels,
    one right: accuracy 0.5, but too few labels for an accuracy alert."""
    registry = CollectorRegistry()
    fraud = ModelMonitor("fraud", "3", "sklearn", registry=registry)
    churn = ModelMonitor("churn", "1", "xgboost", registry=registry)
    fraud.record_model_load(1.25)
    rng = np.random.default_rng(0)
    train = pd.DataFrame({"x": rng.normal(size=2000), "c": rng.choice(["a", "b"], 2000)})
    clf = ModelMonitor("clf", "1", registry=registry,
                       profile=Profile.from_data(train, predictions=rng.choice(["yes", "no"], 2000)),
                       quality_options={"window": 500, "feedback_db": str(tmp_path / "fb.sqlite")})
    clf.check_inputs(pd.DataFrame({"x": rng.normal(2, 1, 500), "c": rng.choice(["a", "b"], 500)}))
    clf.record_predictions(["yes", "no"], request_ids=["r1", "r2"])
    clf.record_feedback("r1", "yes")
    clf.record_feedback("r2", "yes")
    clf.quality.flush()
    stop = threading.Event()

    def traffic() -> None:
        rng = random.Random(7)
        while not stop.wait(0.02):
            fraud.observe_inference(0.01, "error" if rng.random() < 0.25 else "success")
            churn.observe_inference(0.8)

    port = free_port()
    server = make_server("127.0.0.1", port, make_wsgi_app(registry), handler_class=_Quiet)
    threads = [threading.Thread(target=server.serve_forever, daemon=True),
               threading.Thread(target=traffic, daemon=True)]
    for t in threads:
        t.start()
    yield Endpoint(f"http://127.0.0.1:{port}/metrics", clf.quality.drift()["x"]["psi"])
    stop.set()
    server.shutdown()
    server.server_close()


@pytest.fixture
def zabbix(tmp_path: Path) -> Iterator[ZabbixStack]:
    reason = missing()
    if reason:
        pytest.skip(reason)
    with zabbix_stack(tmp_path) as stack:
        yield stack


def _wait(what: str, zabbix: ZabbixStack, check: object, timeout: float = 150.0) -> object:
    deadline = time.monotonic() + timeout
    while True:
        result = check()  # type: ignore[operator]
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not within {timeout}s; zabbix_server.log:\n"
                                 + zabbix.log_tail())
        time.sleep(2)


def test_template_imports_and_items_receive_values(zabbix: ZabbixStack,
                                                   model_server: Endpoint) -> None:
    api = zabbix.api
    assert api.call("configuration.import", {
        "format": "yaml", "source": render_template(ThresholdsConfig()), "rules": IMPORT_RULES,
    }) is True
    template = api.call("template.get", {"filter": {"host": TEMPLATE_NAME},
                                         "output": ["templateid"]})[0]
    # Zabbix kept every object of the file (an import may skip what it cannot link).
    generated = build_template(ThresholdsConfig())["zabbix_export"]["templates"][0]
    rules = generated["discovery_rules"]
    tid = template["templateid"]
    for method, owner, expected in (
        ("discoveryrule.get", "templateids", len(rules)),
        ("itemprototype.get", "templateids", sum(len(r["item_prototypes"]) for r in rules)),
        ("triggerprototype.get", "templateids", sum(len(r["trigger_prototypes"]) for r in rules)),
        ("graphprototype.get", "templateids", sum(len(r["graph_prototypes"]) for r in rules)),
        ("valuemap.get", "hostids", len(generated["valuemaps"])),
    ):
        params = {owner: tid, "countOutput": True}
        assert int(api.call(method, params)) == expected, method
    group = api.call("hostgroup.create", {"name": "modelmon test"})["groupids"][0]
    hostid = api.call("host.create", {
        "host": "model-server", "groups": [{"groupid": group}],
        "templates": [{"templateid": template["templateid"]}],
        "macros": [{"macro": "{$MODELMON.METRICS.URL}", "value": model_server.url},
                   {"macro": "{$MODELMON.INTERVAL}", "value": "5s"}],
    })["hostids"][0]

    def items(key: str) -> list[dict[str, str]]:
        found: list[dict[str, str]] = api.call("item.get", {
            "hostids": hostid, "search": {"key_": key},
            "output": ["key_", "lastvalue", "lastclock", "state", "error"]})
        return found

    load_key = 'modelmon.value[model_load_duration_seconds,"fraud","3"]'
    _wait("the discovered load-duration item's value", zabbix,
          lambda: [i for i in items(load_key) if i["lastclock"] != "0"])
    assert float(items(load_key)[0]["lastvalue"]) == 1.25

    calls = {m: f'modelmon.rate[inference_requests_total:all,"{m}","{v}"]'
             for m, v in (("fraud", "3"), ("churn", "1"))}
    _wait("request rates of both models (two polls)", zabbix,
          lambda: all(i["lastclock"] != "0" for k in calls.values() for i in items(k))
          and all(items(k) for k in calls.values()))
    for key in calls.values():  # 50 calls/s by the traffic thread, as Zabbix sees them
        assert 10 < float(items(key)[0]["lastvalue"]) < 80, items(key)

    # Every item the catalog gave this host is either fed or waiting for a series the
    # endpoint does not export yet; none is broken (unsupported) by its preprocessing.
    everything = api.call("item.get", {"hostids": hostid, "output": ["key_", "state", "error"]})
    assert len(everything) > 30
    assert [i for i in everything if i["state"] != "0"] == []

    def firing() -> set[str]:
        triggers = api.call("trigger.get", {"hostids": hostid, "only_true": True,
                                            "filter": {"value": 1}, "output": ["description"],
                                            "expandDescription": True})
        return {t["description"] for t in triggers}

    _wait("both page burn-rate triggers", zabbix, lambda: {
        "ModelErrorBudgetBurningFast: model=fraud version=3",
        "ModelLatencyBudgetBurningFast: model=churn version=1"} <= firing())
    fired = firing()
    assert "ModelErrorBudgetBurningFast: model=churn version=1" not in fired
    assert "ModelLatencyBudgetBurningFast: model=fraud version=3" not in fired

    # Drift: the per-process PSI as Zabbix received it, and the alert with its minimum
    # of values met; the accuracy alert waits for min_feedback_labels (2 < 100).
    drift_key = 'modelmon.value[feature_drift,"clf","1","x","psi"]'
    _wait("clf's drift value", zabbix,
          lambda: [i for i in items(drift_key) if i["lastclock"] != "0"])
    assert float(items(drift_key)[0]["lastvalue"]) == pytest.approx(model_server.psi_x, rel=1e-6)
    assert model_server.psi_x > 0.25
    _wait("ModelFeatureDrift for clf's x", zabbix,
          lambda: "ModelFeatureDrift: model=clf version=1 feature=x method=psi" in firing())
    accuracy_key = 'modelmon.value[feedback_accuracy,"clf","1"]'
    _wait("clf's accuracy", zabbix,
          lambda: [i for i in items(accuracy_key) if i["lastclock"] != "0"])
    assert float(items(accuracy_key)[0]["lastvalue"]) == 0.5
    assert not any(t.startswith("ModelAccuracyDrop") for t in firing())
    assert [i for i in api.call("item.get", {"hostids": hostid, "output": ["key_", "error"],
                                             "filter": {"state": 1}})] == []
