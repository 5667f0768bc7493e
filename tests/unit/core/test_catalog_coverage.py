"""Exported metrics and the catalog agree: every ``modelmon_*`` family a real
code path exports is in the catalog, and every catalog entry of the groups
exercised here is exported by some code path."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from modelmon import ModelMonitor, instrument_app
from modelmon.catalog import CATALOG
from modelmon.config import serve_config_from_mapping
from modelmon.exporters.service.app import create_app

PREFIX = "modelmon_"


def exported_families(registry: CollectorRegistry) -> set[str]:
    names = set()
    for family in registry.collect():
        if not family.name.startswith(PREFIX) or not family.samples:
            continue
        if family.type == "counter":
            names.add(family.name + "_total")
        else:
            names.add(family.name)
    return {n.removeprefix(PREFIX) for n in names}


def exercise_service(registry: CollectorRegistry) -> None:
    from flask import Flask

    mon = ModelMonitor("m", version="1", registry=registry, max_label_values=1)
    app = Flask("coverage")

    @app.post("/predict")
    def predict():
        with mon.track(batch_size=2, request_bytes=10) as t:
            t.response_bytes = 5
        return "ok"

    instrument_app(app, mon)
    client = app.test_client()
    client.post("/predict", data=b"xx")
    for exc_type in (KeyError, ValueError):  # the second overflows the cap of 1
        try:
            with mon.track():
                raise exc_type()
        except exc_type:
            pass
    with mon.loading():
        pass
    client.get("/metrics")


def exercise_ingest(registry: CollectorRegistry) -> None:
    app = create_app(serve_config_from_mapping({"max_series": 200}), registry=registry)
    client = app.test_client()
    client.post("/ingest", json={"model": "x", "latency_seconds": 0.1})
    # More model versions than a budget of 200 series holds: the rest go to __other__.
    client.post("/ingest", json=[{"model": "x", "version": str(v), "latency_seconds": 0.1}
                                 for v in range(10)])
    # The Python API replaces characters no consumer takes in a label value.
    ModelMonitor("bidi\u202eoverride", registry=registry)


GROUPS = {
    "service": exercise_service, "http": exercise_service,
    "ingest": exercise_ingest, "plugins": exercise_ingest,
}


def test_every_exported_metric_is_in_the_catalog_and_every_entry_is_exported():
    catalog = {k.name for k in CATALOG}
    exported: set[str] = set()
    for exercise in set(GROUPS.values()):
        registry = CollectorRegistry()
        exercise(registry)
        exported |= exported_families(registry)
    assert exported - catalog == set(), "exported but not declared in modelmon/catalog/"
    wanted = {k.name for k in CATALOG if k.group in GROUPS}
    # build_info comes from the built-in plugin; system metrics (edge group) may too.
    assert wanted - exported == set(), "declared in the catalog but never exported"
