"""Edge KPIs: link state, backlog, remote_write sends and drops, per device."""

from __future__ import annotations

from modelmon.kpi import KPI

KPIS: tuple[KPI, ...] = ()
