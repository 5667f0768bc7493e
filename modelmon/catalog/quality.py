"""Model-quality KPIs: input data quality, drift, predictions, late ground truth."""

from __future__ import annotations

from modelmon.kpi import KPI

KPIS: tuple[KPI, ...] = ()
