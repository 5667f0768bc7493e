"""``modelmon demo``: the whole picture on one machine, in one command.

Starts the stack (``modelmon.demo.stack``: cloud model servers, Prometheus with
the generated rules, Alertmanager, the webhook receiver, three edge devices
behind links it cuts), drives traffic and the schedule of scenarios
(``modelmon.demo.scenarios``), shows the live view, and with ``--check`` exits
0 once the scenario's story was seen, 1 with what was missing at its deadline.
"""

from __future__ import annotations

import signal
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

import requests

from modelmon.demo.check import Checker, Outage
from modelmon.demo.ports import DemoPorts, PortTaken
from modelmon.demo.scenarios import (
    SCENARIOS,
    Scenario,
    ScenarioStep,
    State,
    live_schedule,
    state_at,
)
from modelmon.demo.snapshot import SnapshotReader
from modelmon.demo.stack import DEMO_THRESHOLDS, EDGE_INTERVAL, DemoStack, LogTarget, StackError
from modelmon.demo.traffic import Traffic
from modelmon.demo.view import PlainView, View, make_view, save_screenshot
from modelmon.demo.webhook import WebhookReceiver


@dataclass
class DemoOptions:
    ports: dict[str, int]
    rps: float = 20.0
    duration: float | None = None
    workdir: Path | None = None
    scenario: str | None = None
    check: bool = False
    es_url: str | None = None
    logstash_url: str | None = None
    thresholds: Path = DEMO_THRESHOLDS
    plain: bool = False
    report: Path | None = None  # default: <workdir>/report.html; with --check only if given
    no_report: bool = False
    screenshot: Path | None = None  # an SVG of the live view when the demo stops


def run_traffic(app_url: str, exporter_url: str, rps: float, duration: float | None) -> int:
    """Traffic and the cloud scenarios' schedule only, against servers started
    elsewhere (the compose stack)."""
    traffic = Traffic(app_url.rstrip("/"), exporter_url.rstrip("/"), rps)
    steps, cycle = live_schedule()
    # The schedule's clock starts once the model server answers: its first error
    # burst would be lost on a server still training its model (a container start).
    print(f"modelmon demo: waiting for {app_url}/healthz", flush=True)
    while not _answers(f"{app_url.rstrip('/')}/healthz"):
        time.sleep(1.0)
    print(f"modelmon demo: sending traffic to {app_url} and {exporter_url}", flush=True)
    thread = threading.Thread(target=traffic.run, daemon=True)
    thread.start()
    start = time.monotonic()
    try:
        while duration is None or time.monotonic() - start < duration:
            traffic.conditions = state_at(steps, (time.monotonic() - start) % cycle).conditions
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    traffic.stop.set()
    thread.join(5)
    return 0


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False


def run_webhook(host: str, port: int, duration: float | None) -> int:
    """The webhook receiver alone, printing each notification (the compose stack)."""
    hook = WebhookReceiver(port, host=host)
    view = PlainView([("webhook receiver", f"{hook.url}/alerts/<receiver>")])
    hook.on_notification = lambda n: view.note(f"alert {n.line()}")
    signal.signal(signal.SIGTERM, _on_term)
    try:
        with view:
            if duration is None:
                threading.Event().wait()
            else:
                time.sleep(duration)
    except KeyboardInterrupt:
        pass
    finally:
        hook.close()
    return 0


def _on_term(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


class _Schedule:
    """Applies the schedule's state to the traffic, the links and the devices."""

    def __init__(self, stack: DemoStack, traffic: Traffic, view: View) -> None:
        self.stack, self.traffic, self.view = stack, traffic, view
        self.labels: tuple[str, ...] | None = None
        self.outages: list[Outage] = []
        self.faults: dict[str, float] = {}
        self.rolled_out: ScenarioStep | None = None
        self.rollouts = 0

    def apply(self, state: State) -> None:
        self.traffic.conditions = state.conditions
        for device in self.stack.devices:
            cut = device.name in state.cut
            if cut and device.link_up:
                device.cut()
                self.outages.append(Outage(device.name, time.time()))
            elif not cut and not device.link_up:
                device.restore()
                for outage in self.outages:
                    if outage.device == device.name and outage.restored_at is None:
                        outage.restored_at = time.time()
            fault = state.device_faults.get(device.name, 0.0)
            if self.faults.get(device.name, 0.0) != fault:
                device.set_fault(fault)
                self.faults[device.name] = fault
        if state.rollout is not None and state.rollout is not self.rolled_out:
            self.rolled_out = state.rollout
            self.rollouts += 1
            if self.stack.bundles is not None:
                version = f"demo-{self.rollouts + 1}"
                self.stack.bundles.rollout(version)
                self.view.note(f"bundle {version} published (edge-3's signed with the wrong key)")
        elif state.rollout is None:
            self.rolled_out = None
        if state.labels != self.labels:
            self.labels = state.labels
            self.view.schedule(state.labels)
            self.view.note("schedule: " + (", ".join(state.labels) or "back to normal"))


def run_demo(options: DemoOptions) -> int:
    try:
        ports = DemoPorts.resolve(**options.ports)
    except PortTaken as exc:
        print(f"modelmon demo: {exc}", flush=True)
        return 2
    scenario: Scenario | None = SCENARIOS[options.scenario] if options.scenario else None
    workdir = Path(options.workdir or tempfile.mkdtemp(prefix="modelmon-demo-"))
    logs = LogTarget(workdir / "logs", options.es_url, options.logstash_url)
    stack = DemoStack(ports, workdir, logs, options.thresholds)
    signal.signal(signal.SIGTERM, _on_term)
    started = time.monotonic()
    try:
        print(f"modelmon demo: starting (process logs in {workdir})", flush=True)
        try:
            stack.start(on_step=lambda what: print(f"modelmon demo: starting {what}", flush=True))
        except (StackError, RuntimeError, TimeoutError, OSError) as exc:
            print(f"modelmon demo: {exc}", flush=True)
            return 1
        print(f"modelmon demo: ready in {time.monotonic() - started:.1f} s", flush=True)
        return _run(options, stack, scenario)
    except KeyboardInterrupt:
        print("\nmodelmon demo: stopping", flush=True)
        return 0
    finally:
        _write_report(options, stack, started)
        stack.stop()


def _urls(stack: DemoStack) -> list[tuple[str, str]]:
    assert stack.prometheus is not None and stack.webhook is not None
    urls = [
        ("model server (scikit-learn, 2 gunicorn workers)", f"{stack.app_url}/predict"),
        ("modelmon serve (/ingest of a non-Python model)", f"{stack.exporter_url}/metrics"),
        ("Prometheus (rules: Status > Rules, alerts)", stack.prometheus.url),
        ("Alertmanager", stack.alertmanager_url),
        ("webhook receiver (notifications)", f"{stack.webhook.url}/alerts/<receiver>"),
    ]
    urls += [(f"edge device {d.name} (local query API)", d.listen_url) for d in stack.devices]
    urls.append(("pipeline events", stack.logs.description))
    return urls


def _run(options: DemoOptions, stack: DemoStack, scenario: Scenario | None) -> int:
    from modelmon.thresholds import load_thresholds

    assert stack.prometheus is not None and stack.webhook is not None
    if scenario is not None:
        steps: tuple[ScenarioStep, ...] = scenario.steps
        cycle = None
        title = f"modelmon demo - scenario {scenario.name}"
    else:
        steps, length = live_schedule()
        cycle = length
        title = "modelmon demo - cloud and edge, live"
    view = make_view(_urls(stack), title, plain=options.plain or options.check)
    if scenario is not None:
        view.note(f"scenario {scenario.name}: {scenario.summary}")
    stack.webhook.on_notification = lambda n: view.note(f"alert {n.line()}")
    traffic = Traffic(stack.app_url, stack.exporter_url, options.rps)
    thread = threading.Thread(target=traffic.run, name="modelmon-demo-traffic", daemon=True)
    thread.start()
    schedule = _Schedule(stack, traffic, view)
    reader = SnapshotReader(stack.prometheus, stack.devices, load_thresholds(options.thresholds))
    start = time.monotonic()
    checker = None
    if options.check and scenario is not None:
        checker = Checker(scenario, stack.webhook, stack.prometheus,
                          None if (options.es_url or options.logstash_url) else stack.logs.log_dir,
                          time.time(), schedule.outages, EDGE_INTERVAL)
    next_look = 0.0
    try:
        with view:
            while True:
                t = time.monotonic() - start
                schedule.apply(state_at(steps, t % cycle if cycle else t))
                exited = stack.exited()
                if exited:
                    view.note(f"modelmon demo: {exited}")
                    return 1
                if options.duration is not None and t > options.duration:
                    view.note(f"modelmon demo: done, {traffic.sent} requests sent")
                    return 0
                if t >= next_look:
                    next_look = t + 2.0
                    view.update(reader.read())
                    if checker is not None and scenario is not None:
                        result = _check(checker, scenario, t, view)
                        if result is not None:
                            return result
                time.sleep(0.25)
    finally:
        traffic.stop.set()
        thread.join(5)
        if options.screenshot is not None:
            save_screenshot(view, _urls(stack), title, options.screenshot)
            print(f"modelmon demo: live view saved to {options.screenshot}", flush=True)


def _check(checker: Checker, scenario: Scenario, t: float, view: View) -> int | None:
    if t < scenario.length:  # the story is not over before its last step ends
        return None
    missing = checker.missing()
    if not missing:
        seen = [f"{a} fired and resolved" for a in scenario.alerts]
        seen += [s.what for s in scenario.series]
        view.note(f"PASS scenario {scenario.name} in {t:.0f} s: {'; '.join(seen)}")
        return 0
    if t > scenario.deadline:
        view.note(f"FAIL scenario {scenario.name}: after {t:.0f} s, missing:")
        for item in missing:
            view.note(f"  - {item}")
        return 1
    return None


def _write_report(options: DemoOptions, stack: DemoStack, started: float) -> None:
    if options.no_report or stack.prometheus is None or (options.check and not options.report):
        return
    try:
        from modelmon.dashboards.report.writer import write_report
    except ImportError:
        return  # modelmon report is not part of this version
    out = options.report or stack.workdir / "report.html"
    try:
        from modelmon.thresholds import load_thresholds

        # the report's burn-rate panels read the recording rules of the demo's config
        write_report(stack.prometheus.url, out, since_seconds=time.monotonic() - started + 60,
                     alertmanager_url=stack.alertmanager_url,
                     config=load_thresholds(options.thresholds))
        print(f"modelmon demo: report of the run written to {out}", flush=True)
    except Exception as exc:  # the report is a bonus: never hide the demo's own result
        print(f"modelmon demo: no report ({exc})", flush=True)
