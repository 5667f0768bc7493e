"""The autoscaling queries of 'modelmon k8s build' read real modelmon metrics: a
real Prometheus scrapes two model server replicas, labelled namespace/pod as
the prometheus-operator's ServiceMonitor labels them, and the KEDA triggers'
queries and the prometheus-adapter rule return what the replicas export."""

from __future__ import annotations

import threading
import time
from wsgiref.simple_server import WSGIRequestHandler, make_server

import pytest
from prometheus_client import CollectorRegistry, make_wsgi_app

from modelmon import ModelMonitor
from modelmon.demo.processes import free_port, running_prometheus
from modelmon.kubernetes import K8sSettings, adapter_rules, in_flight_query, p95_latency_query

pytestmark = pytest.mark.integration


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


def test_keda_and_adapter_queries_return_the_replicas_figures(tmp_path):
    settings = K8sSettings(namespace="models", model="churn")
    replicas, servers, open_calls, monitors = {}, [], [], []
    stop = threading.Event()

    def traffic() -> None:  # calls of 2-3 ms on every replica: the latency histogram
        while not stop.is_set():
            for monitor in monitors:
                with monitor.track():
                    time.sleep(0.002)

    for pod, in_flight in (("churn-a", 3), ("churn-b", 1)):
        registry = CollectorRegistry()
        monitor = ModelMonitor("churn", version="3", registry=registry)
        monitors.append(monitor)
        for _ in range(in_flight):  # calls still running: in flight
            call = monitor.track()
            call.__enter__()
            open_calls.append(call)
        port = free_port()
        server = make_server("127.0.0.1", port, make_wsgi_app(registry), handler_class=_Quiet)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        replicas[pod] = f"127.0.0.1:{port}"
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [{
            "job_name": "model-server",
            "static_configs": [{"targets": [target], "labels": {"namespace": "models", "pod": pod}}
                               for pod, target in replicas.items()],
        }],
    }
    threading.Thread(target=traffic, daemon=True).start()
    try:
        with running_prometheus(config, workdir=tmp_path / "prometheus") as prom:
            p95 = prom.wait_for(p95_latency_query(settings) + " > 0", timeout=30)
            assert 0.002 <= float(p95[0]["value"][1]) < 1.0
            stop.set()  # now only the open calls are in flight

            # KEDA's AverageValue trigger divides this sum by the replicas.
            prom.wait_for(in_flight_query(settings) + " == 4", timeout=30)
            rule = adapter_rules(settings)["rules"][0]
            assert {s["metric"]["pod"] for s in prom.query(rule["seriesQuery"])} == set(replicas)
            per_pod = (rule["metricsQuery"].replace("<<.Series>>", rule["name"]["as"])
                       .replace("<<.LabelMatchers>>", 'namespace="models",pod=~"churn-a|churn-b"')
                       .replace("<<.GroupBy>>", "pod"))
            # What the adapter serves the HPA per pod: each replica's own in-flight calls.
            deadline, seen = time.monotonic() + 30, {}
            while seen != {"churn-a": 3.0, "churn-b": 1.0} and time.monotonic() < deadline:
                time.sleep(0.5)
                seen = {s["metric"]["pod"]: float(s["value"][1]) for s in prom.query(per_pod)}
            assert seen == {"churn-a": 3.0, "churn-b": 1.0}
    finally:
        stop.set()
        for call in open_calls:
            call.__exit__(None, None, None)
        for server in servers:
            server.shutdown()
