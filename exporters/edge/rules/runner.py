"""Rules inside the edge agent: a local window of the device's own samples,
the rule groups evaluated over it on schedule, and their results as spool
records (remote-written like any sample, with their evaluation timestamps).

The agent's collector thread drives it (``observe`` each collection's records,
then ``evaluate_due``), so evaluation needs no thread of its own and always
sees the collection it follows. The window keeps what the rules can reach
(their longest range + offset + the 5 m lookback) and no more; a rule reaching
further back than ``max_range_ms`` (``edge.rules_max_range``) is refused.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

from modelmon.exporters.edge.prompb import LabelSet, SeriesEncoder, WriteRequestReader
from modelmon.exporters.edge.promql import MemoryStorage, is_stale
from modelmon.exporters.edge.remote_write import compress, decompress
from modelmon.exporters.edge.rules.evaluation import GroupResult, RuleGroupEvaluator
from modelmon.exporters.edge.rules.files import (
    DEFAULT_MAX_RANGE_MS,
    RuleGroup,
    check_max_range,
    load_rule_files,
)


def iter_samples(write_request: bytes) -> Iterator[tuple[LabelSet, float, int]]:
    """(sorted labels, value, timestamp ms) of every sample of a serialized
    ``WriteRequest`` (values bit-exact: a staleness marker stays one)."""
    yield from WriteRequestReader().samples(write_request)


class EdgeRuleRunner:
    def __init__(self, groups: Sequence[RuleGroup], evaluation_interval: float,
                 device_labels: Mapping[str, str], max_samples_per_record: int = 2000,
                 query_window: float | None = None,
                 max_range_ms: int = DEFAULT_MAX_RANGE_MS) -> None:
        check_max_range(groups, max_range_ms)
        self.max_range_ms = max_range_ms
        self.storage = MemoryStorage()
        # The query API (and tests) read the window from other threads.
        self.lock = threading.Lock()
        self.device_labels = dict(device_labels)
        self._groups = [
            (RuleGroupEvaluator(g, self.storage, self.device_labels, label_results=True),
             g.interval_ms if g.interval_ms is not None else int(evaluation_interval * 1000))
            for g in groups]
        self._next_ms: list[int | None] = [None] * len(self._groups)
        self.window_ms = _window_ms(groups, query_window)
        self._encoder = SeriesEncoder()
        self._reader = WriteRequestReader()  # read under self.lock
        self._max = max_samples_per_record
        self.last_results: list[GroupResult] = []
        # What the last evaluate_due evaluated: (group, its interval, result), for the
        # alert notifier (modelmon.exporters.edge.alerting).
        self.evaluated: list[tuple[RuleGroupEvaluator, int, GroupResult]] = []
        # Called with (group, time) before a group's first evaluation: restores the
        # alert state an earlier run of the agent left (ALERTS_FOR_STATE's role).
        self.on_first_evaluation: Callable[[RuleGroupEvaluator, int], None] | None = None

    @property
    def evaluators(self) -> list[RuleGroupEvaluator]:
        return [evaluator for evaluator, _ in self._groups]

    def schedule(self) -> list[tuple[RuleGroupEvaluator, int]]:
        """Each group's evaluator and interval (ms), for the rules API (under ``lock``)."""
        return list(self._groups)

    def replace_groups(self, groups: Sequence[RuleGroup], evaluation_interval: float,
                       query_window: float | None = None) -> None:
        """Run ``groups`` from the next evaluation on, keeping the window (a
        configuration bundle applied without a restart). A group identical to a
        running one (file, name, interval, rules) keeps its evaluator: its alerts
        keep their state and ``activeAt``, as in a Prometheus reload; a changed group
        (same file and name) takes over the alerts of its rules that kept their name
        and labels (Prometheus's ``CopyState``)."""
        check_max_range(groups, self.max_range_ms)  # before anything changes
        default_ms = int(evaluation_interval * 1000)
        with self.lock:
            by_name = {(e.group.file, e.group.name): e for e, _ in self._groups}
            running = {_fingerprint(e.group): (e, interval_ms, due) for (e, interval_ms), due
                       in zip(self._groups, self._next_ms, strict=True)}
            evaluators: list[tuple[RuleGroupEvaluator, int]] = []
            next_ms: list[int | None] = []
            for group in groups:
                interval_ms = group.interval_ms if group.interval_ms is not None else default_ms
                old = running.pop(_fingerprint(group), None)
                if old is not None and old[1] == interval_ms:
                    evaluators.append((old[0], interval_ms))
                    next_ms.append(old[2])
                else:
                    evaluator = RuleGroupEvaluator(group, self.storage, self.device_labels,
                                                   label_results=True)
                    previous = by_name.get((group.file, group.name))
                    if previous is not None:
                        evaluator.copy_state(previous)
                    evaluators.append((evaluator, interval_ms))
                    next_ms.append(None)
            self._groups, self._next_ms = evaluators, next_ms
            self.window_ms = _window_ms(groups, query_window)

    @classmethod
    def from_files(cls, patterns: Sequence[str], base_dir: Path | None, evaluation_interval: float,
                   device_labels: Mapping[str, str], query_window: float | None = None,
                   max_range_ms: int = DEFAULT_MAX_RANGE_MS) -> EdgeRuleRunner:
        groups = load_rule_files(patterns, base_dir) if patterns else []
        return cls(groups, evaluation_interval, device_labels, query_window=query_window,
                   max_range_ms=max_range_ms)

    def observe(self, payloads: Sequence[bytes]) -> None:
        """Add one collection's spool records (snappy ``WriteRequest``s) to the window."""
        with self.lock:
            for payload in payloads:
                for labels, value, t in self._reader.samples(decompress(payload)):
                    self.storage.append(labels, t, value)

    def evaluate_due(self, now_ms: int) -> list[tuple[bytes, int]]:
        """Evaluate the groups that are due at ``now_ms``; their results as
        (payload, sample count) spool records, device-labelled."""
        chunk: list[bytes] = []
        records: list[tuple[bytes, int]] = []
        results: list[GroupResult] = []
        evaluated: list[tuple[RuleGroupEvaluator, int, GroupResult]] = []
        with self.lock:
            for i, (evaluator, interval_ms) in enumerate(self._groups):
                due = self._next_ms[i]
                # Collections arrive with a little jitter: within half an interval of
                # its time a group is due, so a 10s group on a 10s collection never skips.
                if due is not None and now_ms + interval_ms // 2 < due:
                    continue
                self._next_ms[i] = now_ms + interval_ms if due is None or now_ms - due >= \
                    interval_ms else due + interval_ms
                if due is None and self.on_first_evaluation is not None:
                    self.on_first_evaluation(evaluator, now_ms)
                result = evaluator.evaluate(now_ms)
                results.append(result)
                evaluated.append((evaluator, interval_ms, result))
                for labels, value in result.samples:
                    labels = self._device_labelled(labels)
                    chunk.append(self._encoder.encode_stale(labels, now_ms) if is_stale(value)
                                 else self._encoder.encode(labels, value, now_ms))
                    if len(chunk) >= self._max:
                        records.append((compress(b"".join(chunk)), len(chunk)))
                        chunk = []
            self.storage.retain(now_ms - self.window_ms)
        if chunk:
            records.append((compress(b"".join(chunk)), len(chunk)))
        self.last_results = results
        self.evaluated = evaluated
        return records

    def _device_labelled(self, labels: LabelSet) -> LabelSet:
        # Like Prometheus's external labels: added where the result lacks them, so a
        # fleet's recording results and ALERTS stay apart in the cloud.
        present = {n for n, _ in labels}
        missing = [(n, v) for n, v in self.device_labels.items() if n not in present and v]
        return tuple(sorted((*labels, *missing))) if missing else labels


def _window_ms(groups: Sequence[RuleGroup], query_window: float | None) -> int:
    return max(max((g.lookback_ms for g in groups), default=0) + 60_000,
               int((query_window or 0) * 1000))


def _fingerprint(group: RuleGroup) -> tuple[object, ...]:
    """What makes two groups the same group (compiled queries compare by their text)."""
    return (group.file, group.name, group.interval_ms, group.limit, tuple(
        (type(r).__name__, r.name, r.query.text, tuple(sorted(r.labels.items())),
         getattr(r, "for_ms", None), getattr(r, "keep_firing_for_ms", None),
         tuple(sorted(getattr(r, "annotations", {}).items())))
        for r in group.rules))
