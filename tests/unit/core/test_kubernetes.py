"""The Kubernetes manifests (modelmon.kubernetes, 'modelmon k8s build') and the
PrometheusRule validate against the CRD schemas prometheus-operator and KEDA
publish (tests/schemas/crds, see SOURCE.md), strictly: an unknown field fails,
as with the API server's strict field validation."""

from __future__ import annotations

import copy
import re
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import promql_parser
import pytest
import yaml

from modelmon.alerting.render import render_prometheus_rule
from modelmon.kubernetes import (
    K8sSettings,
    adapter_rules,
    in_flight_query,
    manifests,
    p95_latency_query,
    render_all,
)
from modelmon.thresholds import ThresholdsConfig

REPO = Path(__file__).resolve().parents[3]
CRDS = REPO / "tests" / "schemas" / "crds"
OUT = REPO / "examples" / "kubernetes"


def _strict(schema: Any) -> Any:
    """``schema`` with unknown fields refused wherever the CRD lists the fields."""
    if isinstance(schema, dict):
        schema = {k: _strict(v) for k, v in schema.items()}
        if isinstance(schema.get("pattern"), str) and schema["pattern"].startswith("^(?i)"):
            # Go's RE2 takes a flag after ^; Python wants global flags first.
            schema["pattern"] = "(?i)^" + schema["pattern"].removeprefix("^(?i)")
        if ("properties" in schema and "additionalProperties" not in schema
                and not schema.get("x-kubernetes-preserve-unknown-fields")):
            schema["additionalProperties"] = False
    elif isinstance(schema, list):
        schema = [_strict(v) for v in schema]
    return schema


@cache
def crd_schemas() -> dict[tuple[str, str], dict[str, Any]]:
    """(apiVersion, kind) -> the strict openAPIV3Schema of that served version."""
    out = {}
    for path in CRDS.glob("*.yaml"):
        crd = yaml.safe_load(path.read_text())
        spec = crd["spec"]
        for version in spec["versions"]:
            if version.get("served"):
                out[(f"{spec['group']}/{version['name']}", spec["names"]["kind"])] = _strict(
                    version["schema"]["openAPIV3Schema"])
    return out


def validate(resource: dict[str, Any]) -> None:
    key = (resource["apiVersion"], resource["kind"])
    schema = crd_schemas().get(key)
    assert schema is not None, f"no published CRD schema for {key}"
    # metadata is the API server's ObjectMeta, not described by the CRD.
    body = {k: v for k, v in resource.items() if k != "metadata"}
    jsonschema.validate(body, schema, cls=jsonschema.Draft7Validator)
    assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", resource["metadata"]["name"])


def custom_resources(settings: K8sSettings | None = None) -> list[dict[str, Any]]:
    return [r for resources in manifests(settings).values() for r in resources
            if "." in r["apiVersion"].split("/")[0]]


def test_the_schemas_are_the_published_ones():
    kinds = {kind for _, kind in crd_schemas()}
    assert {"ServiceMonitor", "PodMonitor", "PrometheusRule", "ScaledObject"} <= kinds


@pytest.mark.parametrize("settings", [
    K8sSettings(),
    K8sSettings(namespace="prod", app="fraud", model="fraud", port="web", prefix="acme_",
                in_flight_per_replica=2.5, p95_latency_seconds=0.25, max_replicas=40),
], ids=["defaults", "custom"])
def test_every_custom_resource_validates_against_its_crd(settings):
    resources = custom_resources(settings)
    assert {r["kind"] for r in resources} == {"ServiceMonitor", "PodMonitor", "ScaledObject"}
    for resource in resources:
        validate(resource)


def test_the_prometheus_rule_validates_against_its_crd():
    validate(yaml.safe_load(render_prometheus_rule(ThresholdsConfig())))


@pytest.mark.parametrize("break_it", [
    lambda r: r["spec"].__setitem__("endpoint", r["spec"].pop("endpoints")),
    lambda r: r["spec"]["endpoints"][0].__setitem__("interval", "15 seconds"),
    lambda r: r["spec"]["endpoints"][0].__setitem__("honorLabels", "yes"),
], ids=["misspelled field", "bad duration", "wrong type"])
def test_validation_catches_a_broken_service_monitor(break_it):
    resource = copy.deepcopy(manifests()["servicemonitor-model-server.yaml"][0])
    break_it(resource)
    with pytest.raises(jsonschema.ValidationError):
        validate(resource)


def test_validation_catches_a_broken_scaled_object():
    resource = copy.deepcopy(manifests()["keda-scaledobject.yaml"][0])
    resource["spec"]["triggers"][0]["metadata"]["threshold"] = 4  # KEDA wants strings
    with pytest.raises(jsonschema.ValidationError):
        validate(resource)


def test_the_autoscaling_queries_are_valid_promql_on_catalog_metrics():
    settings = K8sSettings()
    for query in (in_flight_query(settings), p95_latency_query(settings)):
        promql_parser.parse(query)
    rule = adapter_rules(settings)["rules"][0]
    promql_parser.parse(rule["seriesQuery"])
    # The adapter fills its templates in; with them filled, the query parses.
    filled = (rule["metricsQuery"].replace("<<.Series>>", rule["name"]["as"])
              .replace("<<.LabelMatchers>>", 'namespace="models"').replace("<<.GroupBy>>", "pod"))
    promql_parser.parse(filled)


def test_the_hpa_asks_for_the_metric_the_adapter_serves():
    hpa = manifests()["hpa-prometheus-adapter.yaml"][1]
    config_map = manifests()["hpa-prometheus-adapter.yaml"][0]
    served = {r["name"]["as"] for r in yaml.safe_load(config_map["data"]["config.yaml"])["rules"]}
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["metrics"][0]["pods"]["metric"]["name"] in served
    assert hpa["spec"]["scaleTargetRef"] == manifests()["keda-scaledobject.yaml"][0]["spec"][
        "scaleTargetRef"]


def test_the_committed_manifests_are_up_to_date():
    for name, text in render_all().items():
        assert (OUT / name).read_text() == text, f"run 'modelmon k8s build' ({name} is stale)"
    assert {p.name for p in OUT.glob("*.yaml")} == set(render_all())
