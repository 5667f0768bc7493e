"""The KPI catalog: every metric modelmon exports, declared once.

Exporters create their metrics from these entries (``modelmon.metrics``);
``docs/KPIS.md``, the dashboards and the alert rules are generated from them.
A test fails when an exported metric is missing here or an entry here is never
exported, so this package is the single place to add or change a KPI. Each
group of KPIs has its own module.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from modelmon.catalog import containers, edge, edge_config, gpu, logs, quality, service
from modelmon.kpi import DEFAULT_PREFIX, KPI

CATALOG: tuple[KPI, ...] = (
    service.KPIS + quality.KPIS + logs.KPIS + edge.KPIS + containers.KPIS + gpu.KPIS
    + edge_config.KPIS
)

__all__ = ["CATALOG", "DEFAULT_PREFIX", "KPI", "by_name", "in_groups"]


def by_name(name: str) -> KPI:
    """The catalog entry called ``name`` (without prefix)."""
    try:
        return _INDEX[name]
    except KeyError:
        raise KeyError(
            f"unknown KPI {name!r}: it is not in modelmon.catalog.CATALOG; add an entry there"
        ) from None


def in_groups(groups: Sequence[str]) -> Iterator[KPI]:
    return (k for k in CATALOG if k.group in groups)


_INDEX = {k.name: k for k in CATALOG}
assert len(_INDEX) == len(CATALOG), "duplicate KPI name in CATALOG"
