"""Write or check a directory of generated files (dashboards, rules)."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path


def write_or_check(files: Mapping[str, str], out: Path, check: bool, command: str) -> int:
    """Write ``files`` under ``out``, or with ``check`` report those that differ."""
    if check:
        if not out.is_dir():
            print(f"{out} does not exist: run this from the repository root, or pass --out",
                  file=sys.stderr)
            return 1
        stale = [
            name for name, text in files.items()
            if not (out / name).exists() or (out / name).read_text() != text
        ]
        if stale:
            for name in stale:
                print(f"{out / name} is out of date", file=sys.stderr)
            print(f"run '{command}' and commit the result", file=sys.stderr)
            return 1
        print(f"{len(files)} files in {out} are up to date")
        return 0
    out.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (out / name).write_text(text)
        print(f"wrote {out / name}")
    return 0
