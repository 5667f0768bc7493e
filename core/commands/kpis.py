"""``modelmon kpis``: print the KPI catalog; write or check docs/KPIS.md."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from modelmon import kpi_docs

DEFAULT_DOC = Path("docs/KPIS.md")


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("kpis", help="print the KPI catalog; write or check docs/KPIS.md")
    p.add_argument("--format", choices=("table", "json", "markdown"), default="table")
    p.add_argument("--prefix", default="modelmon_", help="metric name prefix (default modelmon_)")
    p.add_argument("--write", action="store_true", help="write the Markdown to --doc")
    p.add_argument("--check", action="store_true", help="exit 1 when --doc is out of date")
    p.add_argument("--doc", type=Path, default=DEFAULT_DOC, help=f"default {DEFAULT_DOC}")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.write or args.check:
        expected = kpi_docs.render_markdown()
        if args.write:
            args.doc.parent.mkdir(parents=True, exist_ok=True)
            args.doc.write_text(expected)
            print(f"wrote {args.doc}")
            return 0
        if not args.doc.exists():
            print(f"{args.doc} does not exist: run this from the repository root, or pass --doc",
                  file=sys.stderr)
            return 1
        actual = args.doc.read_text()
        if actual != expected:
            print(
                f"{args.doc} is out of date with the KPI catalog; run 'modelmon kpis --write'",
                file=sys.stderr,
            )
            return 1
        print(f"{args.doc} is up to date")
        return 0
    render = {"table": kpi_docs.render_table, "json": kpi_docs.render_json,
              "markdown": kpi_docs.render_markdown}[args.format]
    sys.stdout.write(render(prefix=args.prefix))
    return 0
