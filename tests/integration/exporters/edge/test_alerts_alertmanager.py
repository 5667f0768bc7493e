"""Edge alerts reach a real Alertmanager (0.25, API v2) with their true times,
through an outage of both links and an agent SIGKILLed and restarted in it.

Timeline (seconds after T0, the moment both links go down):

* before T0: ``Heartbeat`` fires online and reaches Alertmanager;
* 1: ``OfflineBlip`` fires, 3: it resolves; 1: ``OfflineFiring`` is pending,
  firing one ``for`` later;
* 4.5: the agent is SIGKILLed, and started again (its state restored);
* 8 (or once the agent runs again): Alertmanager and the cloud Prometheus
  come back;
* 16: ``OfflineFiring`` resolves, online.

Alertmanager then holds ``OfflineFiring`` with the ``startsAt`` the device gave
it (the first ``ALERTS{alertstate="firing"}`` sample the cloud Prometheus got
backfilled), the webhook behind it gets ``OfflineBlip`` once, resolved, with
its true ``startsAt`` and ``endsAt`` and never as firing, and ``OfflineFiring``'s
resolution with the ``endsAt`` of the evaluation that resolved it.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from support.alertmanager import Alertmanager, Webhook
from support.edge_harness import Agent, Receiver

pytestmark = pytest.mark.integration

T = TypeVar("T")
EVAL = 0.5  # evaluation_interval, seconds
# Seconds from writing the rules to T0 (agent start, Heartbeat delivered), and to
# OfflineFiring's end: room for a slow start on a loaded machine.
SETUP = 12.0
RESOLVE = 16.0


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    hook = Webhook()
    yield hook
    hook.close()


@pytest.fixture
def alertmanager(tmp_path: Path, webhook: Webhook) -> Iterator[Alertmanager]:
    am = Alertmanager(tmp_path / "alertmanager", webhook.url)
    am.start()
    yield am
    am.stop()


def rules(t0: float) -> str:
    def between(a: float, b: float) -> str:
        return f"(vector(time()) > bool {t0 + a:.3f}) + (vector(time()) < bool {t0 + b:.3f}) == 2"

    return f"""
groups:
  - name: device
    rules:
      - alert: Heartbeat
        expr: vector(1)
        labels: {{severity: info}}
      - alert: OfflineBlip
        expr: {between(1, 3)}
        labels: {{severity: warning}}
        annotations: {{summary: "blip at {{{{ $value }}}}"}}
      - alert: OfflineFiring
        expr: {between(1, RESOLVE)}
        for: 1s
        labels: {{severity: critical}}
"""


def ms(rfc3339: str) -> int:
    return round(dt.datetime.fromisoformat(rfc3339.replace("Z", "+00:00")).timestamp() * 1000)


def wait(what: str, probe: Callable[[], T | None], timeout: float) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(0.1)
    raise TimeoutError(f"{what} not within {timeout}s")


def sleep_until(t: float) -> None:
    time.sleep(max(0.0, t - time.time()))


def firing_times(receiver: Receiver, device: str, alertname: str) -> list[int]:
    assert receiver.prom is not None
    result = receiver.prom.query(
        f'ALERTS{{device="{device}",alertname="{alertname}",alertstate="firing"}}[10m]')
    return sorted(round(float(ts) * 1000) for s in result for ts, _ in s["values"])


def test_offline_alerts_reach_alertmanager_with_their_true_times(
        tmp_path: Path, receiver: Receiver, agent: Agent, alertmanager: Alertmanager,
        webhook: Webhook) -> None:
    t0 = time.time() + SETUP
    rule_file = agent.workdir / "device.rules.yml"
    rule_file.parent.mkdir(parents=True, exist_ok=True)
    rule_file.write_text(rules(t0))
    agent.extra = {
        "rules": [str(rule_file)], "evaluation_interval": f"{EVAL}s",
        "alerting": {"alertmanagers": [{"url": alertmanager.url, "timeout": "2s"}],
                     "resend_delay": f"{EVAL}s", "external_url": "http://edge-it.local:9108"},
    }
    agent.start()

    def heartbeat() -> list[dict[str, Any]]:
        return [a for a in alertmanager.alerts() if a["labels"]["alertname"] == "Heartbeat"]

    beat = wait("Heartbeat in Alertmanager", heartbeat, SETUP - 1)[0]
    assert beat["labels"]["device"] == agent.device
    assert beat["generatorURL"] == "http://edge-it.local:9108/graph?g0.expr=vector%281%29&g0.tab=1"
    assert time.time() < t0 - 0.3, "setup was too slow for the timeline; T0 has passed"

    sleep_until(t0)
    alertmanager.stop()
    receiver.stop()
    sleep_until(t0 + 4.5)
    agent.kill()  # mid-outage, with OfflineFiring firing and OfflineBlip resolved
    agent.start()
    sleep_until(t0 + 8)
    back = time.time()
    alertmanager.start()
    receiver.start()

    def offline_firing() -> list[dict[str, Any]]:
        return [a for a in alertmanager.alerts() if a["labels"]["alertname"] == "OfflineFiring"]

    held = wait("OfflineFiring in Alertmanager", offline_firing, t0 + RESOLVE - 1 - time.time())
    assert len(held) == 1 and held[0]["status"]["state"] == "active"
    assert held[0]["labels"]["device"] == agent.device
    agent.wait_drained(timeout=30)
    fired = firing_times(receiver, agent.device, "OfflineFiring")
    assert fired and t0 * 1000 + 1800 <= fired[0] <= t0 * 1000 + 3000, fired[:3]
    # The true start, from before the restart, not the restart or the delivery time
    # (the sends before the restart were valid 4 * resend_delay: Alertmanager
    # cannot merge them with a later start by itself).
    assert ms(held[0]["startsAt"]) == fired[0]

    blips = wait("OfflineBlip at the webhook", lambda: webhook.alerts("OfflineBlip"), 5)
    blip_fired = firing_times(receiver, agent.device, "OfflineBlip")
    assert blip_fired and blip_fired[-1] < t0 * 1000 + 3000 + 1
    assert [b["status"] for b in blips] == ["resolved"], blips  # never notified as firing
    assert ms(blips[0]["startsAt"]) == blip_fired[0]
    ends = ms(blips[0]["endsAt"])
    assert blip_fired[-1] < ends <= blip_fired[-1] + 2 * EVAL * 1000 + 300
    assert ends < back * 1000, "endsAt is the delivery time, not when it resolved"
    assert blips[0]["annotations"]["summary"] == "blip at 2"

    # Online again: the resolution of OfflineFiring reaches Alertmanager with its endsAt.
    resolved = wait("OfflineFiring resolved at the webhook",
                    lambda: [a for a in webhook.alerts("OfflineFiring")
                             if a["status"] == "resolved"], t0 + RESOLVE + 6 - time.time())
    assert len(resolved) == 1, resolved
    assert ms(resolved[0]["startsAt"]) == fired[0]
    fired = firing_times(receiver, agent.device, "OfflineFiring")
    assert fired[-1] < ms(resolved[0]["endsAt"]) <= fired[-1] + 2 * EVAL * 1000 + 300
    firing_notes = [a for a in webhook.alerts("OfflineFiring") if a["status"] == "firing"]
    assert firing_notes and {ms(a["startsAt"]) for a in firing_notes} == {fired[0]}
    agent.stop()
    status = agent.status()["alerting"]
    assert status["pending_notifications"] == 0 and not status["dropped_notifications"], status
    assert status["restored_alerts"] >= 2  # Heartbeat and OfflineFiring (the second run)


def test_an_ha_pair_with_one_alertmanager_down_gets_the_alerts_on_both(
        tmp_path: Path, receiver: Receiver, agent: Agent, alertmanager: Alertmanager,
        webhook: Webhook) -> None:
    """Delivered once one Alertmanager took them (as Prometheus counts it); the one
    that was down gets the firing alert with the next resend, same startsAt."""
    late = Alertmanager(tmp_path / "alertmanager-late", webhook.url)  # not started yet
    rule_file = agent.workdir / "device.rules.yml"
    rule_file.parent.mkdir(parents=True, exist_ok=True)
    rule_file.write_text("groups: [{name: device, rules: [{alert: Heartbeat, expr: vector(1)}]}]")
    agent.extra = {
        "rules": [str(rule_file)], "evaluation_interval": f"{EVAL}s",
        "alerting": {"alertmanagers": [{"url": late.url, "timeout": "1s"},
                                       {"url": alertmanager.url, "timeout": "1s"}],
                     "resend_delay": "1s"},
    }
    agent.start()
    try:
        first = wait("Heartbeat in the running Alertmanager", alertmanager.alerts, 20)[0]
        wait("notifications settled with one Alertmanager down",
             lambda: (agent.status().get("alerting") or {}).get("delivered_notifications"), 5)
        late.start()
        second = wait("Heartbeat in the late Alertmanager", late.alerts, 10)[0]
        assert second["startsAt"] == first["startsAt"]
        assert second["labels"] == first["labels"]
        status = agent.status()["alerting"]
        assert status["pending_notifications"] <= 1 and not status["dropped_notifications"]
    finally:
        late.stop()


def test_alerts_reach_an_alertmanager_behind_mtls_and_basic_auth(
        tmp_path: Path, webhook: Webhook) -> None:
    """Alertmanager's own web config (exporter-toolkit): TLS requiring a client
    certificate of the CA, and basic auth; the agent's tls and basic_auth keys."""
    import bcrypt
    import requests
    from prometheus_client import CollectorRegistry

    from modelmon.exporters.edge import EdgeAgent, edge_config_from_mapping
    from support.tls_certs import make_pki

    pki = make_pki(tmp_path / "pki")
    (tmp_path / "am-password").write_text("s3cret\n")
    session = requests.Session()
    session.verify, session.cert = str(pki.ca), (str(pki.client_cert), str(pki.client_key))
    session.auth = ("edge", "s3cret")
    session.trust_env = False  # REQUESTS_CA_BUNDLE would replace verify
    am = Alertmanager(tmp_path / "alertmanager", webhook.url, session=session, scheme="https",
                      web_config={
                          "tls_server_config": {
                              "cert_file": str(pki.server_cert), "key_file": str(pki.server_key),
                              "client_ca_file": str(pki.ca),
                              "client_auth_type": "RequireAndVerifyClientCert"},
                          "basic_auth_users": {
                              "edge": bcrypt.hashpw(b"s3cret", bcrypt.gensalt(4)).decode()}})
    am.start()
    (tmp_path / "device.rules.yml").write_text(
        "groups: [{name: device, rules: [{alert: Heartbeat, expr: vector(1)}]}]")

    def agent(**target: Any) -> EdgeAgent:
        config = edge_config_from_mapping({"edge": {
            "device_id": "edge-tls", "interval": "1s", "listen": None, "collectors": [],
            "spool": {"path": str(tmp_path / f"state-{len(target)}")},
            "remote_write": {"url": "http://127.0.0.1:1/api/v1/write", "min_backoff": "0.01s",
                             "max_backoff": "0.02s"},
            "rules": ["device.rules.yml"],
            "alerting": {"alertmanagers": [{"url": am.url, "timeout": "5s", **target}]},
        }}, tmp_path)
        return EdgeAgent(config, CollectorRegistry())

    tls = {"ca_file": str(pki.ca), "cert_file": str(pki.client_cert),
           "key_file": str(pki.client_key)}
    try:
        for target, delivered in (
                ({"tls": tls}, False),  # no password: 401, kept for a fix
                ({"tls": tls, "basic_auth": {"username": "edge",
                                             "password_file": str(tmp_path / "am-password")}},
                 True)):
            edge = agent(**target)
            try:
                edge.collect_once()
                edge.alerting.spool.flush_buffer()  # type: ignore[union-attr]
                step = edge.alerting.worker.step()  # type: ignore[union-attr]
                assert step.state == ("progress" if delivered else "retry"), target
                pending = edge.alerting.spool.stats().pending  # type: ignore[union-attr]
                assert pending == (0 if delivered else 1)
            finally:
                edge.stop()
        held = wait("Heartbeat in Alertmanager", am.alerts, 5)
        assert [a["labels"]["device"] for a in held] == ["edge-tls"]
    finally:
        am.stop()



class Recorder:
    """An Alertmanager API v2 endpoint that keeps every POSTed body with the time
    it came, by path prefix (one for Prometheus, one for the agent)."""

    def __init__(self) -> None:
        import json
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.bodies: dict[str, list[tuple[float, list[dict[str, Any]]]]] = {}
        lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with lock:
                    owner.bodies.setdefault(self.path.split("/")[1], []).append(
                        (time.time(), body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server.server_address[1]}"

    def alerts(self, source: str) -> list[tuple[float, dict[str, Any]]]:
        return [(at, a) for at, body in self.bodies.get(source, []) for a in body]


def test_the_agent_notifies_as_prometheus_does(tmp_path: Path, receiver: Receiver,
                                               agent: Agent) -> None:
    """The same rule evaluated by a real Prometheus 2.42 and by the agent, each
    sending to a recording API v2 endpoint, with the same resend delay (2 s),
    evaluation interval (1 s), external URL and device label: the same labels and
    annotations; every firing notice valid 4 * max(resend, interval) after the
    evaluation that sent it, one start per episode, resends every 3 s (the first
    evaluation more than 2 s after the last send); the resolution sent with one
    endsAt, then resent unchanged."""
    from modelmon.demo.processes import prometheus_config, running_prometheus

    recorder = Recorder()
    end = time.time() + 14  # the alert resolves then, for both
    rule_file = tmp_path / "diff.rules.yml"
    rule_file.write_text(
        f"groups: [{{name: diff, rules: [{{alert: Diff, expr: 'vector(time()) < {end:.3f}', "
        "labels: {severity: info}, annotations: {summary: 'on {{ $externalLabels.device }}'}}]}]")
    external = "http://edge-diff.local:9108"
    config = prometheus_config([], scrape_interval="1s", extra={
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s",
                   "external_labels": {"device": agent.device}},
        "rule_files": [str(rule_file)],
        "alerting": {"alertmanagers": [{"path_prefix": "/prom", "static_configs": [
            {"targets": [recorder.address]}]}]}})
    agent.interval = 1.0
    agent.extra = {"rules": [str(rule_file)], "evaluation_interval": "1s", "alerting": {
        "alertmanagers": [{"url": f"http://{recorder.address}/edge"}],
        "resend_delay": "2s", "external_url": external}}
    with running_prometheus(config, workdir=tmp_path / "prometheus",
                            extra_args=["--rules.alert.resend-delay=2s",
                                        f"--web.external-url={external}"]):
        agent.start()
        time.sleep(max(0.0, end - time.time()) + 8)
    agent.stop()
    recorder.server.shutdown()

    def summary(source: str) -> dict[str, Any]:
        alerts = recorder.alerts(source)
        assert alerts, f"{source} sent nothing"
        firing = [a for at, a in alerts if ms(a["endsAt"]) > at * 1000]
        resolved = [a for at, a in alerts if ms(a["endsAt"]) <= at * 1000]
        # endsAt - startsAt of a firing notice: (its evaluation - the start) + 8 s.
        offsets = sorted({ms(a["endsAt"]) - ms(a["startsAt"]) - 8000 for a in firing})
        return {
            "labels": {tuple(sorted(a["labels"].items())) for _, a in alerts},
            "annotations": {tuple(sorted(a["annotations"].items())) for _, a in alerts},
            "generatorURL": {a["generatorURL"].split("?")[0] for _, a in alerts},
            "starts": len({a["startsAt"] for _, a in alerts}),
            # Off "valid 8 s after the evaluation that sent it, a send every 3 s" (the
            # agent evaluates at its collections, a few ms off Prometheus's grid).
            "off the grid": [o for o in offsets if abs(o - round(o / 3000) * 3000) > 100],
            "resends": len(offsets) >= 3,
            "resolved endsAt": len({a["endsAt"] for a in resolved}),
            "resolved resent": len(resolved) >= 2,
        }

    prom, edge = summary("prom"), summary("edge")
    assert edge == prom, (edge, prom)
    assert prom["starts"] == 1 and prom["resolved endsAt"] == 1
    assert prom["off the grid"] == [] and prom["resends"]
    assert prom["generatorURL"] == {external + "/graph"}
