"""Log-shipper KPIs: events delivered, dropped, dead-lettered; the spool."""

from __future__ import annotations

from modelmon.kpi import KPI

KPIS: tuple[KPI, ...] = ()
