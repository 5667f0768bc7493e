"""Regenerate ``ecs_schema.py`` from a checkout of github.com/elastic/ecs.

    python -m modelmon.exporters.logs.ecs_schema_gen --git-dir <ecs>/.git --ref v8.11.0

reads ``generated/ecs/ecs_flat.yml`` at that ref (or ``--flat-yml <file>``)
and rewrites ``exporters/logs/ecs_schema.py`` (``--check``: exit 1 when it
differs). Every ECS field is kept with its type, not only those modelmon
writes: an extra field a user logs under an ECS name is checked against ECS too.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

OUTPUT = Path(__file__).with_name("ecs_schema.py")


def read_flat(git_dir: str | None, ref: str, flat_yml: str | None) -> dict[str, Any]:
    if flat_yml:
        text = Path(flat_yml).read_text()
    else:
        text = subprocess.run(
            ["git", "--git-dir", git_dir or ".git", "show", f"{ref}:generated/ecs/ecs_flat.yml"],
            check=True, capture_output=True, text=True).stdout
    loaded: dict[str, Any] = yaml.safe_load(text)
    return loaded


def commit_of(git_dir: str | None, ref: str) -> str:
    return subprocess.run(["git", "--git-dir", git_dir or ".git", "rev-parse", f"{ref}^{{commit}}"],
                          check=True, capture_output=True, text=True).stdout.strip()


def render(flat: dict[str, Any], version: str, commit: str) -> str:
    fields = {name: spec["type"] for name, spec in sorted(flat.items())}
    top: dict[str, str] = {}
    for name, spec in sorted(flat.items()):
        head = name.split(".")[0]
        top[head] = spec["type"] if head == name else "object"
    allowed: dict[str, list[str]] = {}
    pairs: dict[str, list[str]] = {}
    for name in ("event.kind", "event.category", "event.type", "event.outcome"):
        values = flat[name].get("allowed_values") or []
        allowed[name] = sorted(v["name"] for v in values)
        if name == "event.category":
            pairs = {v["name"]: sorted(v.get("expected_event_types") or []) for v in values}
    out = [
        '"""ECS field types and allowed event values, generated: do not edit.',
        "",
        f"Source: github.com/elastic/ecs {version}, commit {commit},",
        "generated/ecs/ecs_flat.yml. Regenerate with",
        f"``python -m modelmon.exporters.logs.ecs_schema_gen --git-dir <ecs>/.git --ref v{version}``.",
        '"""',
        "",
        f'ECS_VERSION = "{version}"',
        f'ECS_COMMIT = "{commit}"',
        "",
        "# Every ECS field: dotted name -> ECS type. One string, parsed at import: a",
        "# dict display of 1,659 entries costs ~40 ms to compile where no .pyc is written.",
        '_FIELDS = """',
        *(f"{k} {v}" for k, v in fields.items()),
        '"""',
        "FIELD_TYPES: dict[str, str] = {",
        "    name: kind for name, kind in (line.split() for line in _FIELDS.splitlines() if line)",
        "}",
        "",
        "# Every top-level ECS name: its type (``object`` for a field set).",
        "TOP_LEVEL_TYPES: dict[str, str] = {",
        *(f'    "{k}": "{v}",' for k, v in top.items()),
        "}",
        "",
        "ALLOWED_VALUES: dict[str, frozenset[str]] = {",
        *(f'    "{k}": frozenset({{\n{_lines(v)}    }}),' for k, v in allowed.items()),
        "}",
        "",
        "# event.category -> the event.type values ECS expects with it.",
        "EXPECTED_EVENT_TYPES: dict[str, frozenset[str]] = {",
        *(f'    "{k}": frozenset({{\n{_lines(v)}    }}),' for k, v in pairs.items()),
        "}",
        "",
    ]
    return "\n".join(out)


def _lines(values: list[str]) -> str:
    return "".join(f'        "{v}",\n' for v in values)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m modelmon.exporters.logs.ecs_schema_gen",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--git-dir", help="the .git directory of an elastic/ecs clone")
    parser.add_argument("--ref", default="v8.11.0", help="a tag of elastic/ecs (default v8.11.0)")
    parser.add_argument("--flat-yml", help="read this ecs_flat.yml instead of the git ref")
    parser.add_argument("--commit", help="the commit to name (with --flat-yml)")
    parser.add_argument("--check", action="store_true", help="exit 1 if the file would change")
    args = parser.parse_args(argv)
    flat = read_flat(args.git_dir, args.ref, args.flat_yml)
    commit = args.commit or ("unknown" if args.flat_yml else commit_of(args.git_dir, args.ref))
    text = render(flat, args.ref.removeprefix("v"), commit)
    if args.check:
        same = OUTPUT.exists() and OUTPUT.read_text() == text
        print(f"{OUTPUT}: {'up to date' if same else 'out of date'}")
        return 0 if same else 1
    OUTPUT.write_text(text)
    print(f"wrote {OUTPUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
