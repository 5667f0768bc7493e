"""The demo's scenarios: what happens when, and what must be seen for ``--check``.

A scenario is a schedule of steps (a fault on the cloud model, a cut edge
link, a failing device model) and its expectations: alerts that must reach the
webhook receiver through Alertmanager firing and then resolved, ECS events that
must be in the log sink, and for an outage, a backfill that closes the gap.
The live demo (no ``--scenario``) plays them one after another, in a loop.
Times are seconds after the stack is ready; the demo rule config
(``demo/thresholds.yml``) makes the real rules react within seconds.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from modelmon.demo.names import MODEL_NAME

DEVICES = ("edge-1", "edge-2", "edge-3")


@dataclass(frozen=True)
class Conditions:
    fault_rate: float = 0.0  # share of /predict calls that fail
    latency: float = 0.0  # extra seconds on latency_share of the calls
    latency_share: float = 0.0
    drifting: bool = False  # the input population changes
    label_error_rate: float = 0.08  # how often the model is wrong (seen through late labels)

    def merged(self, other: Conditions) -> Conditions:
        base = Conditions()
        changed = {k: v for k, v in other.__dict__.items() if v != getattr(base, k)}
        return replace(self, **changed)


@dataclass(frozen=True)
class ScenarioStep:
    at: float
    duration: float
    conditions: Conditions | None = None  # on the cloud model server
    cut_device: str | None = None  # the device's link is down
    device_fault: tuple[str, float] | None = None  # (device, share of its calls failing)
    rollout: bool = False  # a new configuration bundle is published at the step's start

    def active(self, t: float) -> bool:
        return self.at <= t < self.at + self.duration


@dataclass(frozen=True)
class ExpectedAlert:
    alertname: str
    labels: Mapping[str, str] = field(default_factory=dict)
    # The alert's startsAt in Alertmanager must fall in this device's outage: it
    # fired on the device while offline and arrived later with its true start.
    starts_in_outage_of: str | None = None

    def matches(self, labels: Mapping[str, str]) -> bool:
        return labels.get("alertname") == self.alertname and all(
            labels.get(k) == v for k, v in self.labels.items())

    def __str__(self) -> str:
        inner = ",".join(f'{k}="{v}"' for k, v in self.labels.items())
        return f"{self.alertname}{{{inner}}}"


@dataclass(frozen=True)
class ExpectedEvent:
    action: str
    fields: Mapping[str, str] = field(default_factory=dict)  # dotted ECS path -> value
    at_least: tuple[str, float] | None = None  # (dotted numeric field, minimum)

    def __str__(self) -> str:
        inner = ", ".join(f"{k}={v}" for k, v in self.fields.items())
        more = f", {self.at_least[0]} >= {self.at_least[1]:g}" if self.at_least else ""
        return f"ECS event {self.action} ({inner}{more})"


@dataclass(frozen=True)
class ExpectedSeries:
    """A PromQL query on the cloud Prometheus that must return something."""

    promql: str
    what: str

    def __str__(self) -> str:
        return f"{self.what} ({self.promql})"


@dataclass(frozen=True)
class Scenario:
    name: str
    summary: str
    steps: tuple[ScenarioStep, ...]
    alerts: tuple[ExpectedAlert, ...]
    events: tuple[ExpectedEvent, ...] = ()
    deadline: float = 150.0  # seconds after the start, for --check
    backfill_device: str | None = None  # its outage must be backfilled without a gap
    # An edge alert that fires on the device while it is offline and must
    # reach the cloud Prometheus (ALERTS, backfilled) with its device timestamps.
    offline_edge_alert: str | None = None
    series: tuple[ExpectedSeries, ...] = ()

    @property
    def length(self) -> float:
        return max(s.at + s.duration for s in self.steps)


_MODEL = {"model": MODEL_NAME}
_ECS_MODEL = {"service.name": MODEL_NAME}

SCENARIOS: dict[str, Scenario] = {s.name: s for s in (
    Scenario(
        "errors", "an error burst pages through the SLO burn-rate alert",
        (ScenarioStep(10, 25, Conditions(fault_rate=0.3)),),
        (ExpectedAlert("ModelErrorBudgetBurningFast", _MODEL),),
        (ExpectedEvent("error", _ECS_MODEL),),
    ),
    Scenario(
        "latency", "slow calls page through the latency burn-rate alert",
        (ScenarioStep(10, 30, Conditions(latency=0.6, latency_share=0.6)),),
        (ExpectedAlert("ModelLatencyBudgetBurningFast", _MODEL),),
        (ExpectedEvent("prediction", _ECS_MODEL, at_least=("model.latency_seconds", 0.5)),),
    ),
    Scenario(
        "drift", "input drift crosses the threshold (fleet PSI of the amount feature)",
        (ScenarioStep(10, 30, Conditions(drifting=True)),),
        (ExpectedAlert("ModelFeatureDrift", {**_MODEL, "feature": "amount"}),),
    ),
    Scenario(
        "accuracy", "late labels show accuracy falling",
        (ScenarioStep(10, 35, Conditions(label_error_rate=0.5)),),
        (ExpectedAlert("ModelAccuracyDrop", _MODEL),),
        (ExpectedEvent("feedback-received", _ECS_MODEL),),
    ),
    Scenario(
        "edge-outage",
        "edge-2 goes offline, its model fails while offline (an edge alert fires on the "
        "device), the link returns, the backfill closes the gap and Alertmanager gets the "
        "edge alert with its original startsAt",
        # the model keeps failing after the link returns: Alertmanager is told while the
        # alert still fires (an episode that ended offline arrives resolved, and
        # Alertmanager notifies no resolution of an alert it never saw firing)
        (ScenarioStep(10, 40, cut_device="edge-2"), ScenarioStep(15, 45, device_fault=("edge-2", 0.7))),
        (ExpectedAlert("EdgeDeviceOffline", {"device": "edge-2"}),
         ExpectedAlert("EdgeModelErrors", {"device": "edge-2"}, starts_in_outage_of="edge-2")),
        (ExpectedEvent("edge-link-lost", {"model.edge.device": "edge-2"}),
         ExpectedEvent("edge-link-restored", {"model.edge.device": "edge-2"})),
        backfill_device="edge-2",
        offline_edge_alert="EdgeModelErrors",
    ),
    Scenario(
        "config-rollout",
        "a new configuration bundle reaches the devices; edge-3 refuses a bad one (signed "
        "with a key it does not trust) and keeps its last good one",
        (ScenarioStep(10, 25, rollout=True),),
        (),
        series=(
            ExpectedSeries('modelmon_edge_config_info{device="edge-1",version="demo-2"}',
                           "edge-1 applied bundle demo-2"),
            ExpectedSeries('modelmon_edge_config_info{device="edge-2",version="demo-2"}',
                           "edge-2 applied bundle demo-2"),
            ExpectedSeries('modelmon_edge_bundles_refused_total'
                           '{device="edge-3",reason="signature"} > 0',
                           "edge-3 refused the bad bundle"),
            ExpectedSeries('modelmon_edge_config_info{device="edge-3",version="demo-1"}',
                           "edge-3 still runs demo-1"),
        ),
    ),
)}


def live_schedule(cycle_gap: float = 20.0) -> tuple[tuple[ScenarioStep, ...], float]:
    """Every scenario's steps one after another (each edge outage on the next device):
    the live demo repeats this cycle. Returns (steps, cycle length)."""
    steps: list[ScenarioStep] = []
    offset = 20.0
    for scenario in SCENARIOS.values():
        first = min(s.at for s in scenario.steps)
        for s in scenario.steps:
            steps.append(ScenarioStep(offset + s.at - first, s.duration, s.conditions, s.cut_device,
                              s.device_fault, s.rollout))
        offset += scenario.length - first + cycle_gap
    return tuple(steps), offset


@dataclass(frozen=True)
class State:
    """What the schedule wants at one instant."""

    conditions: Conditions
    cut: frozenset[str]
    device_faults: Mapping[str, float]
    labels: tuple[str, ...]  # what is going on, for the view
    rollout: ScenarioStep | None = None  # the rollout step under way


def state_at(steps: tuple[ScenarioStep, ...], t: float) -> State:
    conditions = Conditions()
    cut: set[str] = set()
    faults: dict[str, float] = {}
    labels: list[str] = []
    rollout = None
    for step in steps:
        if not step.active(t):
            continue
        if step.conditions is not None:
            conditions = conditions.merged(step.conditions)
            labels.append(_describe(step.conditions))
        if step.cut_device:
            cut.add(step.cut_device)
            labels.append(f"{step.cut_device} link down")
        if step.device_fault:
            faults[step.device_fault[0]] = step.device_fault[1]
            labels.append(f"{step.device_fault[0]} model failing")
        if step.rollout:
            rollout = step
            labels.append("bundle rollout")
    return State(conditions, frozenset(cut), faults, tuple(labels), rollout)


def _describe(c: Conditions) -> str:
    parts = []
    if c.fault_rate:
        parts.append(f"error burst {c.fault_rate:.0%}")
    if c.latency_share:
        parts.append(f"slow calls {c.latency_share:.0%} +{c.latency:g}s")
    if c.drifting:
        parts.append("input drift")
    if c.label_error_rate != Conditions().label_error_rate:
        parts.append(f"model wrong on {c.label_error_rate:.0%}")
    return ", ".join(parts)
