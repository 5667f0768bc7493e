"""Start and stop the demo's processes: the whole picture on 127.0.0.1.

Cloud: the model server (gunicorn, 2 workers), ``modelmon serve``, Prometheus
with the generated rules (built from the demo rule config by the same code as
``modelmon rules build``) and the remote_write receiver, Alertmanager with the
example routing (alert_rules/alertmanager.yml) pointed at the demo's webhook
receiver. Edge: three devices, each an edge agent with a small model, whose
remote_write goes through a ``LinkProxy`` the schedule cuts and restores.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from modelmon.demo.bundles import DemoBundles
from modelmon.demo.link_proxy import LinkProxy
from modelmon.demo.ports import DemoPorts
from modelmon.demo.processes import (
    INSTALL_HINT,
    PrometheusProcess,
    find_binary,
    free_port,
    prometheus_config,
    start_prometheus,
    stop_processes,
    wait_http_ok,
)
from modelmon.demo.scenarios import DEVICES
from modelmon.demo.webhook import WebhookReceiver

DEMO_DIR = Path(__file__).resolve().parent
DEMO_THRESHOLDS = DEMO_DIR / "thresholds.yml"
EDGE_RULES = DEMO_DIR / "edge_rules.yml"
EDGE_INTERVAL = 2.0
ALERTMANAGER_HINT = "install it from the OS packages: apt-get install prometheus-alertmanager"


class StackError(Exception):
    """A part of the demo could not start; the message says which and why."""


@dataclass
class LogTarget:
    """Where the pipeline events go: the JSON-lines file sink, or ES / Logstash."""

    log_dir: Path
    es_url: str | None = None
    logstash_url: str | None = None

    def env(self) -> dict[str, str]:
        env = {"MODELMON_DEMO_LOG_DIR": str(self.log_dir)}
        if self.es_url:
            env["MODELMON_DEMO_ES_URL"] = self.es_url
        elif self.logstash_url:
            env["MODELMON_DEMO_LOGSTASH_URL"] = self.logstash_url
        return env

    def edge_section(self, device: str, spool_dir: Path) -> dict[str, Any]:
        common = {"spool_dir": str(spool_dir), "service_name": f"modelmon-edge-{device}"}
        if self.es_url:
            return {"sink": "elasticsearch", "elasticsearch": {"url": self.es_url}, **common}
        if self.logstash_url:
            return {"sink": "logstash_http", "logstash_http": {"url": self.logstash_url}, **common}
        return {"sink": "file", "file": {"path": str(self.log_dir / f"{device}.jsonl")}, **common}

    @property
    def description(self) -> str:
        if self.es_url:
            return f"Elasticsearch {self.es_url}"
        if self.logstash_url:
            return f"Logstash {self.logstash_url}"
        return f"{self.log_dir}/*.jsonl (ECS JSON lines)"


@dataclass
class EdgeDevice:
    name: str
    workdir: Path
    proxy: LinkProxy  # remote_write to Prometheus
    alert_proxy: LinkProxy  # alerts to Alertmanager: the same link, cut together
    listen_port: int
    proc: subprocess.Popen[bytes] | None = None

    @property
    def status_file(self) -> Path:
        return self.workdir / "state" / "status.json"

    @property
    def control_file(self) -> Path:
        return self.workdir / "control.json"

    @property
    def link_up(self) -> bool:
        return self.proxy.up

    def cut(self) -> None:
        self.proxy.cut()
        self.alert_proxy.cut()

    def restore(self) -> None:
        self.proxy.restore()
        self.alert_proxy.restore()

    @property
    def listen_url(self) -> str:
        """The device's local query API (its port read from the device when chosen there)."""
        port = self.listen_port
        if not port:
            try:
                port = int((self.workdir / "listen_port").read_text())
            except (OSError, ValueError):
                return f"(starting; see {self.workdir}.log)"
        return f"http://127.0.0.1:{port}/api/v1/query"

    def set_fault(self, rate: float) -> None:
        tmp = self.control_file.with_suffix(".tmp")
        tmp.write_text(json.dumps({"fault_rate": rate}))
        tmp.replace(self.control_file)

    def status(self) -> dict[str, Any]:
        try:
            data: dict[str, Any] = json.loads(self.status_file.read_text())
            return data
        except (OSError, ValueError):
            return {}


@dataclass
class DemoStack:
    ports: DemoPorts
    workdir: Path
    logs: LogTarget
    thresholds: Path = DEMO_THRESHOLDS
    webhook: WebhookReceiver | None = None
    bundles: DemoBundles | None = None
    prometheus: PrometheusProcess | None = None
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    devices: list[EdgeDevice] = field(default_factory=list)

    @property
    def app_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.app}"

    @property
    def exporter_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.exporter}"

    @property
    def alertmanager_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.alertmanager}"

    def start(self, on_step: Any = print) -> None:
        prometheus_bin = find_binary("prometheus")
        alertmanager_bin = find_binary("prometheus-alertmanager") or find_binary("alertmanager")
        if prometheus_bin is None:
            raise StackError(f"the prometheus binary was not found; {INSTALL_HINT}")
        if alertmanager_bin is None:
            raise StackError(f"the alertmanager binary was not found; {ALERTMANAGER_HINT}")
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.logs.log_dir.mkdir(parents=True, exist_ok=True)
        on_step("webhook receiver and Alertmanager")
        self.webhook = WebhookReceiver(self.ports.webhook, self.workdir / "notifications.jsonl")
        self._start_alertmanager(alertmanager_bin)
        on_step("model server (training the model), modelmon serve")
        self._start_cloud_models()
        on_step("three edge devices behind their links")
        self._start_edge_devices()
        wait_http_ok(f"{self.app_url}/healthz", 300, self.procs["model-server"])
        wait_http_ok(f"{self.exporter_url}/healthz", 120, self.procs["modelmon-serve"])
        # Once the targets answer: no ModelmonTargetDown for a slow start. The
        # devices spool meanwhile and backfill when their receiver is up.
        on_step("Prometheus with the generated rules")
        rules = self._build_rules()
        for attempt in range(3):
            try:
                self.prometheus = self._start_prometheus(prometheus_bin, rules)
                break
            except RuntimeError as exc:
                taken = "address already in use" in str(exc)
                if not taken or "prometheus" not in self.ports.auto or attempt == 2:
                    raise
                # taken while the models started: choose again, the links follow
                self.ports.prometheus = free_port()
                for device in self.devices:
                    device.proxy.target = ("127.0.0.1", self.ports.prometheus)

    def _start_prometheus(self, binary: str, rules: Path) -> PrometheusProcess:
        return start_prometheus(
            prometheus_config([], scrape_interval="2s", extra={
                "rule_files": [str(rules)],
                "alerting": {"alertmanagers": [{"static_configs": [
                    {"targets": [f"127.0.0.1:{self.ports.alertmanager}"]}]}]},
                "scrape_configs": [
                    # Job names match the rules' job_selector, job=~".*modelmon.*".
                    {"job_name": "modelmon-model-server",
                     "static_configs": [{"targets": [f"127.0.0.1:{self.ports.app}"]}]},
                    {"job_name": "modelmon-serve",
                     "static_configs": [{"targets": [f"127.0.0.1:{self.ports.exporter}"]}]},
                ],
            }),
            workdir=self.workdir / "prometheus", port=self.ports.prometheus,
            extra_args=["--web.enable-remote-write-receiver"], binary=binary,
            ready_timeout=60,
        )

    # -- parts ----------------------------------------------------------------

    def _spawn(self, name: str, args: list[str], env: dict[str, str] | None = None) -> None:
        with open(self.workdir / f"{name}.log", "ab") as log_file:
            self.procs[name] = subprocess.Popen(
                args, stdout=log_file, stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
            )

    def _start_alertmanager(self, binary: str) -> None:
        assert self.webhook is not None
        path = self.workdir / "alertmanager.yml"
        path.write_text(yaml.safe_dump(alertmanager_config(self.webhook.url), sort_keys=False))
        self._spawn("alertmanager", [
            binary, f"--config.file={path}", f"--storage.path={self.workdir / 'alertmanager'}",
            f"--web.listen-address=127.0.0.1:{self.ports.alertmanager}",
            "--cluster.listen-address=",  # no gossip port: a single loopback instance
        ])
        try:
            wait_http_ok(f"{self.alertmanager_url}/-/ready", 30, self.procs["alertmanager"])
        except (RuntimeError, TimeoutError) as exc:
            raise StackError(f"Alertmanager did not start: {exc}; see "
                             f"{self.workdir / 'alertmanager.log'}") from None

    def _start_cloud_models(self) -> None:
        self._spawn("model-server", [
            sys.executable, "-m", "gunicorn", "-c",
            "python:modelmon.exporters.service.gunicorn_config",
            "--workers", "2", "--threads", "4", "--bind", f"127.0.0.1:{self.ports.app}",
            "modelmon.demo.model:create_demo_app()",
        ], env={
            **self.logs.env(),
            "MODELMON_DEMO_FEEDBACK_DB": str(self.workdir / "feedback.sqlite"),
            "MODELMON_DEMO_CONTROL": str(self.workdir / "model-faults.json"),
            "MODELMON_DEMO_FEEDBACK_WINDOW": "200",
        })
        serve_config = self.workdir / "serve.yml"
        serve_config.write_text(yaml.safe_dump({"listen": f"127.0.0.1:{self.ports.exporter}"}))
        self._spawn("modelmon-serve", [sys.executable, "-m", "modelmon", "serve", "--config",
                                       str(serve_config)])

    def _build_rules(self) -> Path:
        from modelmon.alerting import load_thresholds, render_all
        from modelmon.alerting.render import RULES_FILE

        out = self.workdir / "rules"
        out.mkdir(exist_ok=True)
        for name, text in render_all(load_thresholds(self.thresholds)).items():
            (out / name).write_text(text)
        return out / RULES_FILE

    def _start_edge_devices(self) -> None:
        self.bundles = DemoBundles(self.workdir / "bundles", self.ports.bundles)
        for name, (write_port, alert_port), listen_port in zip(
                DEVICES, self.ports.edge_proxies(), self.ports.edge_listens(), strict=True):
            workdir = self.workdir / name
            workdir.mkdir(exist_ok=True)
            proxy = LinkProxy(write_port, self.ports.prometheus, name)
            alert_proxy = LinkProxy(alert_port, self.ports.alertmanager, f"{name}-alerts")
            auto_listen = "edge_listen" in self.ports.auto
            device = EdgeDevice(name, workdir, proxy, alert_proxy, 0 if auto_listen else listen_port)
            device.set_fault(0.0)
            config = {"edge": {
                "device_id": name,
                "interval": f"{EDGE_INTERVAL:g}s",
                # any free port when --edge-listen-port 0: bound by the device itself
                "listen": f"127.0.0.1:{device.listen_port}",
                "collectors": [],
                "rules": [str(EDGE_RULES)],
                "spool": {"path": str(workdir / "state"), "max_bytes": "64MiB", "max_age": "1d"},
                "remote_write": {
                    "url": f"http://127.0.0.1:{proxy.port}/api/v1/write",
                    "timeout": "3s", "min_backoff": "0.5s", "max_backoff": "2s",
                },
                # The device's own rule alerts, straight to Alertmanager (API v2)
                # with their true startsAt, spooled while the link is down.
                "alerting": {
                    "alertmanagers": [{"url": f"http://127.0.0.1:{alert_proxy.port}",
                                       "timeout": "3s"}],
                    "resend_delay": "10s",
                },
                # Configuration bundles pulled from the demo's bundle server.
                "bundle": self.bundles.device_section(name),
            }, "logs": self.logs.edge_section(name, workdir / "log-spool")}
            config_path = workdir / "edge.yaml"
            config_path.write_text(yaml.safe_dump(config, sort_keys=False))
            self._spawn(name, [sys.executable, "-m", "modelmon.demo.edge_device",
                               "--config", str(config_path), "--control", str(device.control_file)])
            device.proc = self.procs[name]
            self.devices.append(device)

    def device(self, name: str) -> EdgeDevice:
        return next(d for d in self.devices if d.name == name)

    def exited(self) -> str | None:
        """The first process that exited, with where to look, or None."""
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                return (f"{name} exited with {proc.returncode}; see "
                        f"{self.workdir / (name + '.log')}")
        return None

    def stop(self) -> None:
        procs = list(self.procs.values())
        if self.prometheus is not None:
            procs.append(self.prometheus.proc)
        stop_processes(procs)
        for device in self.devices:
            device.proxy.close()
            device.alert_proxy.close()
        if self.webhook is not None:
            self.webhook.close()
        if self.bundles is not None:
            self.bundles.close()


def alertmanager_config(webhook_url: str) -> dict[str, Any]:
    """The example routing of alert_rules/alertmanager.yml (when this is a checkout),
    its receivers pointed at the demo's webhook receiver, with waits of seconds."""
    example = Path(__file__).resolve().parents[1] / "alert_rules" / "alertmanager.yml"
    if example.exists():
        config: dict[str, Any] = yaml.safe_load(example.read_text())
    else:  # an installed package: the same routes, written here
        config = {
            "route": {"receiver": "default", "group_by": ["alertname", "model", "device"],
                      "routes": [
                          {"matchers": ['severity="critical"'], "receiver": "pager"},
                          {"matchers": ['severity="warning"'], "receiver": "tickets"},
                          {"matchers": ['severity="info"'], "receiver": "blackhole"}]},
            "receivers": [{"name": "default", "webhook_configs": [{"url": "x"}]},
                          {"name": "pager", "webhook_configs": [{"url": "x"}]},
                          {"name": "tickets", "webhook_configs": [{"url": "x"}]},
                          {"name": "blackhole"}],
        }
    config["route"].update(group_wait="1s", group_interval="2s", repeat_interval="1h")
    for route in config["route"].get("routes", []):
        route.pop("repeat_interval", None)
    for receiver in config["receivers"]:
        for hook in receiver.get("webhook_configs", []):
            hook["url"] = f"{webhook_url}/alerts/{receiver['name']}"
            hook["send_resolved"] = True
    return config
