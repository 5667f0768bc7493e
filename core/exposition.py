"""Rendering a registry for a scrape, valid to the strictest consumer of each format.

OpenMetrics 1.0 treats a histogram's ``_sum`` as a counter: it must not be
negative, and a histogram with a negative bucket bound must not carry a sum at
all (the strict parser, ``prometheus_client.openmetrics.parser``, refuses the
whole scrape otherwise). A regression model's outputs can be negative, so
``modelmon_prediction_value`` can legitimately hold a negative sum. In
OpenMetrics such a histogram is exposed as its buckets alone (``_count`` goes
too: OpenMetrics allows it only beside ``_sum``; the ``le="+Inf"`` bucket is the
count). The Prometheus text format has no such rule and keeps everything.

Every /metrics we serve (``modelmon serve``, the Flask integration, the edge
agent) renders through :func:`render` or :func:`metrics_app`, so the rule holds
in single- and multi-process mode alike.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Protocol

from prometheus_client.exposition import choose_encoder, make_wsgi_app
from prometheus_client.metrics_core import Metric
from prometheus_client.samples import Sample

OPENMETRICS_TYPE = "application/openmetrics-text"


class Source(Protocol):
    def collect(self) -> Iterable[Metric]: ...


def _is_signed(samples: list[Sample]) -> bool:
    """True when one histogram's samples (one label set) cannot carry a sum in OpenMetrics."""
    for sample in samples:
        if sample.name.endswith("_bucket"):
            bound = float(sample.labels.get("le", "+Inf"))
            if bound < 0:
                return True
        elif sample.name.endswith("_sum") and (sample.value < 0 or math.isnan(sample.value)):
            return True
    return False


def _any_signed(samples: list[Sample]) -> bool:
    for sample in samples:
        name = sample.name
        if name.endswith("_bucket"):
            if sample.labels.get("le", "").startswith("-"):
                return True
        elif name.endswith("_sum") and not sample.value >= 0:  # negative, or NaN
            return True
    return False


def _group_key(sample: Sample) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((k, v) for k, v in sample.labels.items() if k != "le"))


def openmetrics_safe(family: Metric) -> Metric:
    """``family`` without the ``_sum``/``_count`` of label sets whose sum OpenMetrics forbids."""
    if family.type != "histogram" or not _any_signed(family.samples):
        return family  # the common case, one cheap pass: every scrape of every histogram
    groups: dict[tuple[tuple[str, str], ...], list[Sample]] = {}
    for sample in family.samples:
        groups.setdefault(_group_key(sample), []).append(sample)
    signed = {key for key, samples in groups.items() if _is_signed(samples)}
    if not signed:
        return family
    dropped = (f"{family.name}_sum", f"{family.name}_count")
    safe = Metric(family.name, family.documentation, family.type, family.unit)
    safe.samples = [
        s for s in family.samples if s.name not in dropped or _group_key(s) not in signed
    ]
    return safe


class ScrapeView:
    """What one scrape renders of ``source``: only the ``names`` asked for (``?name[]=``,
    when given) and, for OpenMetrics (``strict``), as its strict parser accepts it."""

    def __init__(self, source: Source, *, strict: bool,
                 names: frozenset[str] | None = None) -> None:
        self._source = source
        self._strict = strict
        self._names = names

    def collect(self) -> Iterator[Metric]:
        names = self._names
        for family in self._source.collect():
            if names is not None:
                kept = Metric(family.name, family.documentation, family.type, family.unit)
                kept.samples = [s for s in family.samples if s.name in names]
                if not kept.samples:
                    continue
                family = kept
            yield openmetrics_safe(family) if self._strict else family

    def restricted_registry(self, names: Iterable[str]) -> ScrapeView:
        return ScrapeView(self._source, strict=self._strict, names=frozenset(names))


def _is_openmetrics(accept: str | None) -> bool:
    return choose_encoder(accept or "")[1].startswith(OPENMETRICS_TYPE)


def render(registry: Source, accept: str | None) -> tuple[bytes, str]:
    """The exposition body and its content type, OpenMetrics when ``accept`` asks for it."""
    encoder, content_type = choose_encoder(accept or "")
    if content_type.startswith(OPENMETRICS_TYPE):
        return encoder(ScrapeView(registry, strict=True)), content_type
    return encoder(registry), content_type


def metrics_app(registry: Source) -> Callable[..., Any]:
    """prometheus_client's /metrics WSGI app (gzip, ``?name[]=``, HEAD/OPTIONS), rendering
    OpenMetrics through a strict :class:`ScrapeView`."""
    text = make_wsgi_app(ScrapeView(registry, strict=False))
    strict = make_wsgi_app(ScrapeView(registry, strict=True))

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        chosen = strict if _is_openmetrics(environ.get("HTTP_ACCEPT")) else text
        return chosen(environ, start_response)

    return app
