"""Label values on the Python API path (issue 12 findings 1 and 2): whatever text
or how many series code inside a model server produces, nothing raises into
it, /metrics stays valid and bounded, and every replacement or fold is counted."""

from __future__ import annotations

import pytest
from flask import Flask
from prometheus_client import CollectorRegistry, generate_latest

from modelmon.exporters.service.flask import instrument_app
from modelmon.exporters.service.monitor import ModelMonitor
from modelmon.labels import (
    OTHER,
    SeriesBudget,
    clean_label_value,
    label_value_problem,
    safe_text,
)
from modelmon.metrics import metric_set
from support.scrape_check import TEXT, scrape, series_lines

BAD = ["\ud800", "a\x00b", "\x1b[31mred", "a\x85b", "evil\u202eexe.txt", "a\u2066b", "zero\u200bwidth",
       "line\u2028sep", "\ufeffbom"]


@pytest.mark.parametrize("text", BAD, ids=repr)
def test_forbidden_characters_are_named_and_replaced(text):
    problem = label_value_problem(text)
    assert problem is not None and "U+" in problem
    cleaned = clean_label_value(text)
    assert label_value_problem(cleaned) is None
    cleaned.encode("utf-8")
    assert "\ufffd" in cleaned


@pytest.mark.parametrize("text", ["fraud-detector", "détecteur", "欺诈", "🙂", "a b", "v\u00a01",
                                  "x" * 300])
def test_printable_text_is_left_alone(text):
    assert label_value_problem(text) is None
    assert clean_label_value(text) == text


def test_safe_text_is_short_printable_ascii():
    for value in ("\ud800" * 100, 10**400, [1] * 1000, {"a": 1}, None, 1.5, True):
        shown = safe_text(value)
        assert shown.isascii() and shown.isprintable() and len(shown) <= 60


def _app():
    app = Flask("t")

    @app.get("/x")
    def x():
        return "ok"

    return app


@pytest.mark.parametrize("text", BAD, ids=repr)
def test_the_python_api_never_raises_and_the_scrape_stays_valid(registry, text):
    mon = ModelMonitor(text, version=text, framework=text, registry=registry,
                       quality_options={"feedback_db": ":memory:"})
    mon.observe_inference(0.1, "error", exception=text)
    bad_exception = type("BadError", (Exception,), {})
    try:
        bad_exception.__name__ = text  # an exception type's name can be (almost) anything
    except (UnicodeEncodeError, ValueError):  # except a lone surrogate or NUL
        pass
    with pytest.raises(bad_exception), mon.track():
        raise bad_exception()
    mon.record_predictions([text, "ok"], request_ids=["r1", "r2"])
    mon.record_feedback("r1", text)
    mon.quality.flush()
    app = _app()
    instrument_app(app, mon, plugins=False)
    client = app.test_client()
    client.get("/x")
    bodies = scrape(client)
    assert text not in bodies[TEXT]
    replaced = sum(s.value for m in registry.collect() for s in m.samples
                   if s.name == "modelmon_label_values_replaced_total")
    assert replaced >= 4  # model, version, framework of model_info, the exception type
    assert mon.model == clean_label_value(text)


def test_labels_through_the_metric_objects_are_cleaned_too(registry):
    """Code that takes a catalog metric from the MetricSet and labels it itself."""
    m = metric_set(registry)
    m.counter("inference_requests_total").labels("a\x00", "1", "success").inc()
    m.counter("inference_requests_total").labels(model="a\x00", version="1",
                                                  outcome="success").inc()
    assert registry.get_sample_value("modelmon_inference_requests_total",
                                     {"model": "a\ufffd", "version": "1", "outcome": "success"}) == 2
    assert registry.get_sample_value("modelmon_label_values_replaced_total",
                                     {"metric": "inference_requests_total", "label": "model"}) == 2


# -- the series budget -----------------------------------------------------------------

def test_the_series_budget_holds_whatever_the_python_api_creates(registry):
    budget = 600
    for i in range(300):  # each monitor wants ~60 series: 30x the budget
        mon = ModelMonitor(f"m{i}", version=str(i), registry=registry, max_series=budget)
        mon.observe_inference(0.1, "error", exception=f"E{i}")
        with mon.track():
            pass
    m = metric_set(registry)
    limit = budget + m.budget.reserve + _unbounded_allowance(m)
    body = scrape_text(registry)
    assert len(series_lines(body)) <= limit
    assert m.budget.used <= limit
    exceeded = sum(s.value for f in registry.collect() for s in f.samples
                   if s.name == "modelmon_series_budget_exceeded_total")
    assert exceeded > 0
    # The folded series keep counting: nothing is lost from the totals.
    total = sum(s.value for f in registry.collect() for s in f.samples
                if s.name == "modelmon_inference_requests_total")
    assert total == 600
    assert registry.get_sample_value("modelmon_inference_requests_total", {
        "model": OTHER, "version": OTHER, "outcome": "error"}) > 0


def test_a_second_budget_for_the_same_registry_fails_loudly(registry):
    ModelMonitor("a", registry=registry, max_series=1000)
    ModelMonitor("b", registry=registry)  # no preference: fine
    with pytest.raises(ValueError, match="max_series"):
        ModelMonitor("c", registry=registry, max_series=2000)


@pytest.mark.parametrize("bad", [0, -1, True, 1.5])
def test_a_bad_budget_is_refused_by_name(bad):
    with pytest.raises(ValueError, match="max_series"):
        SeriesBudget(bad)
    with pytest.raises(ValueError, match="max_series"):
        ModelMonitor("m", registry=CollectorRegistry(), max_series=bad)


def _unbounded_allowance(m) -> int:
    """Series the budget lets through on purpose: one all-__other__ series per metric."""
    from modelmon.catalog import CATALOG

    return sum(30 for _ in CATALOG)


def scrape_text(registry) -> str:
    from prometheus_client import generate_latest

    return generate_latest(registry).decode()


# -- plugin collectors ---------------------------------------------------------------------

def test_a_plugin_collectors_label_values_cannot_break_the_scrape(registry):
    """A mount point decoded with surrogateescape, a sensor name with a control character."""
    import pluggy
    from prometheus_client.metrics_core import GaugeMetricFamily
    from prometheus_client.openmetrics.exposition import generate_latest as generate_om
    from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_om
    from prometheus_client.parser import text_string_to_metric_families as parse_text

    from modelmon import hookimpl, hookspecs
    from modelmon.collectors import PluginCollectors

    mount = b"/media/caf\xe9".decode("utf-8", "surrogateescape")

    class Disks:
        def collect(self):
            g = GaugeMetricFamily("site_disk_free_bytes", "Free bytes \udce9", labels=["mountpoint"])
            g.add_metric([mount], 1.0)
            g.add_metric(["sensor\x00\u202e"], 2.0)
            yield g

    class Site:
        @hookimpl
        def modelmon_register_collectors(self, register):
            register("disks", Disks())

    manager = pluggy.PluginManager(hookspecs.PROJECT)
    manager.add_hookspecs(hookspecs)
    manager.register(Site(), name="site")
    registry.register(PluginCollectors(pm=manager))
    text = generate_latest(registry).decode("utf-8")
    families = {f.name: f for f in parse_text(text)}
    values = {s.labels["mountpoint"] for s in families["site_disk_free_bytes"].samples}
    assert values == {"/media/caf\ufffd", "sensor\ufffd\ufffd"}
    list(parse_om(generate_om(registry).decode("utf-8")))
    assert registry.get_sample_value("modelmon_collector_success", {"collector": "disks"}) == 1


def test_instrument_app_takes_the_series_budget(registry):
    mon = ModelMonitor("m", registry=registry)
    instrument_app(_app(), mon, plugins=False, max_series=12345)
    assert metric_set(registry).budget.max_series == 12345
    with pytest.raises(ValueError, match="max_series"):
        instrument_app(_app(), ModelMonitor("n", registry=registry), plugins=False,
                       max_series=100)
