"""Renderings of the KPI catalog: table, JSON and the Markdown of docs/KPIS.md."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence

from modelmon.catalog import CATALOG
from modelmon.kpi import DEFAULT_PREFIX, KPI

GROUP_TITLES = {
    "service": "Service health",
    "http": "HTTP layer (Flask integration)",
    "ingest": "modelmon serve /ingest",
    "plugins": "Plugins",
    "quality": "Input data quality, drift and predictions",
    "feedback": "Late ground truth",
    "logs": "Log shipping",
    "edge": "Edge agent",
}


def render_json(kpis: Sequence[KPI] = CATALOG, prefix: str = DEFAULT_PREFIX) -> str:
    rows = []
    for k in kpis:
        row = dataclasses.asdict(k)
        row["name"] = k.full_name(prefix)
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


def render_markdown(kpis: Sequence[KPI] = CATALOG, prefix: str = DEFAULT_PREFIX) -> str:
    out = [
        "# modelmon KPIs\n",
        "\n",
        "Generated from the KPI catalog (`modelmon/catalog/`) by `modelmon kpis --write`; "
        "do not edit by hand. `modelmon kpis --check` fails when this file is stale.\n",
    ]
    for group, title in GROUP_TITLES.items():
        members = [k for k in kpis if k.group == group]
        if not members:
            continue
        out.append(f"\n## {title}\n\n")
        out.append("| Metric | Type | Unit | Labels | What it tells you | Dashboard panel | Alerts |\n")
        out.append("|---|---|---|---|---|---|---|\n")
        for k in members:
            labels = ", ".join(f"`{label}`" for label in k.labels) or "-"
            alerts = ", ".join(f"[{a}](runbooks.md#{a.lower()})" for a in k.alerts) or "-"
            out.append(
                f"| `{k.full_name(prefix)}` | {k.type} | {k.unit} | {labels} | "
                f"{_cell(k.help)} {_cell(k.meaning)} | {_cell(k.panel or '-')} | {alerts} |\n"
            )
    return "".join(out)
