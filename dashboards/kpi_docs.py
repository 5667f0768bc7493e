"""Renderings of the KPI catalog: table, JSON and the Markdown of docs/KPIS.md.

The JSON and the Markdown carry the cross-reference the catalog does not
store: the dashboard panels and the alerts that read each KPI, computed from
the generated dashboards and rules (``modelmon.dashboards.references``). That
is why this lives beside the dashboards: core never imports them.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence

from modelmon.catalog import CATALOG
from modelmon.dashboards.references import KPIReferences, PanelRef, kpi_references
from modelmon.kpi import DEFAULT_PREFIX, KPI
from modelmon.thresholds import ThresholdsConfig

GROUP_TITLES = {
    "service": "Service health",
    "http": "HTTP layer (Flask integration)",
    "ingest": "modelmon serve /ingest",
    "plugins": "Plugins",
    "quality": "Input data quality, drift and predictions",
    "feedback": "Late ground truth",
    "logs": "Log shipping",
    "edge": "Edge agent",
    "containers": "Model containers (docker collector)",
    "gpu": "GPUs (nvml collector)",
}


def _references(
    refs: Mapping[str, KPIReferences] | None, prefix: str
) -> Mapping[str, KPIReferences]:
    return refs if refs is not None else kpi_references(ThresholdsConfig(prefix=prefix))


def render_json(
    kpis: Sequence[KPI] = CATALOG,
    prefix: str = DEFAULT_PREFIX,
    refs: Mapping[str, KPIReferences] | None = None,
) -> str:
    refs = _references(refs, prefix)
    rows = []
    for k in kpis:
        row = dataclasses.asdict(k)
        row["name"] = k.full_name(prefix)
        found = refs.get(k.name, KPIReferences())
        row["panels"] = [dataclasses.asdict(p) for p in found.panels]
        row["alerts"] = list(found.alerts)
        rows.append(row)
    return json.dumps(rows, indent=2) + "\n"


def render_table(kpis: Sequence[KPI] = CATALOG, prefix: str = DEFAULT_PREFIX) -> str:
    header = ("NAME", "TYPE", "UNIT", "LABELS")
    rows = [header] + [
        (k.full_name(prefix), k.type, k.unit, ",".join(k.labels)) for k in kpis
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    return "".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() + "\n"
        for row in rows
    )


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _panels_cell(kpi: KPI, panels: Sequence[PanelRef]) -> str:
    """Panels grouped by dashboard and row, the KPI's own row first."""
    places: dict[tuple[str, str, str], list[str]] = {}
    for p in sorted(panels, key=lambda p: (p.dashboard, p.row) != (kpi.dashboard, kpi.row)):
        title = p.dashboard_title.removeprefix("modelmon / ")
        places.setdefault((p.dashboard, title, p.row), []).append(p.title)
    return "; ".join(
        f"{title} › {row}: {', '.join(titles)}" for (_, title, row), titles in places.items()
    ) or "-"


def render_markdown(
    kpis: Sequence[KPI] = CATALOG,
    prefix: str = DEFAULT_PREFIX,
    refs: Mapping[str, KPIReferences] | None = None,
) -> str:
    refs = _references(refs, prefix)
    out = [
        "# modelmon KPIs\n",
        "\n",
        "Generated from the KPI catalog (`core/catalog/`, the `modelmon.catalog` package), "
        "the generated dashboards and the generated rules by `modelmon kpis --write`; do not "
        "edit by hand. `modelmon kpis --check` fails when this file is stale. The panels and "
        "alerts of each KPI are those whose queries read it; the first panels listed are in "
        "the dashboard row the catalog gives the KPI.\n",
    ]
    for group, title in GROUP_TITLES.items():
        members = [k for k in kpis if k.group == group]
        if not members:
            continue
        out.append(f"\n## {title}\n\n")
        out.append("| Metric | Type | Unit | Labels | What it tells you | Dashboard panels | Alerts |\n")
        out.append("|---|---|---|---|---|---|---|\n")
        for k in members:
            found = refs.get(k.name, KPIReferences())
            labels = ", ".join(f"`{label}`" for label in k.labels) or "-"
            alerts = ", ".join(f"[{a}](runbooks.md#{a.lower()})" for a in found.alerts) or "-"
            out.append(
                f"| `{k.full_name(prefix)}` | {k.type} | {k.unit} | {labels} | "
                f"{_cell(k.help)} {_cell(k.meaning)} | {_cell(_panels_cell(k, found.panels))} "
                f"| {alerts} |\n"
            )
    return "".join(out)
