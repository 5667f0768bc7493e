"""Every ``modelmon.<dotted>`` path that README.md and docs/*.md name imports
(as a module, or as an attribute of one), and every file or folder of the
checkout they name exists, so the docs stay true as code moves."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
# Not after a word character, '/', '-' or '.': alert_rules/modelmon.rules.yml,
# logs-modelmon-default and the like are not Python paths.
DOTTED = re.compile(r"(?<![\w/.-])modelmon(?:\.[A-Za-z_]\w*)+")
FILE_SUFFIXES = {"yml", "yaml", "json", "md", "py", "toml", "txt", "db", "sqlite"}
# Dotted names in the docs that are values, not Python.
NOT_PYTHON = {
    "modelmon.model",  # the ECS event.dataset of modelmon's events; a Docker label too
    "modelmon.version",  # the Docker label of a model container's version
}

# `core/catalog/`, `tests/support/es_servers.py`: a path in the checkout, in backticks.
TOP_FOLDERS = ("core", "exporters", "plugins", "dashboards", "alert_rules", "demo", "compose",
               "tests", "benchmarks", "docs", "examples", "modelmon")
REPO_PATH = re.compile(r"`((?:" + "|".join(TOP_FOLDERS) + r")/[\w./-]*)`")

# Run in a child process: importing a documented module may have side effects
# on the importing process (the gunicorn config sets PROMETHEUS_MULTIPROC_DIR).
_RESOLVE = r"""
import importlib, json, sys

def resolve(path):
    parts = path.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError as exc:
            if exc.name is not None and not path.startswith(exc.name):
                raise  # a module that exists failed to import something else
            continue
        for attr in parts[cut:]:
            obj = getattr(obj, attr)
        return
    raise ModuleNotFoundError(path)

errors = {}
for path in json.loads(sys.argv[1]):
    try:
        resolve(path)
        errors[path] = None
    except Exception as exc:
        errors[path] = f"{type(exc).__name__}: {exc}"
print(json.dumps(errors))
"""


def _rule_groups() -> set[str]:
    """The generated rule groups' names (modelmon.drift.recording, modelmon.edge.device,
    ...): values too."""
    import yaml

    names: set[str] = set()
    for generated in ("modelmon.rules.yml", "modelmon.edge.rules.yml"):
        rules = yaml.safe_load((REPO / "alert_rules" / generated).read_text())
        names.update(group["name"] for group in rules["groups"])
    return names


def named_paths() -> list[tuple[str, str]]:
    found: dict[str, str] = {}
    values = NOT_PYTHON | _rule_groups()
    for doc in DOCS:
        for path in DOTTED.findall(doc.read_text()):
            if path.rsplit(".", 1)[-1] in FILE_SUFFIXES or path in values:
                continue
            found.setdefault(path, doc.relative_to(REPO).as_posix())
    return sorted(found.items())


@pytest.fixture(scope="module")
def import_errors() -> dict[str, str | None]:
    paths = [path for path, _ in named_paths()]
    proc = subprocess.run([sys.executable, "-c", _RESOLVE, json.dumps(paths)],
                          capture_output=True, text=True, timeout=120, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    return dict(json.loads(proc.stdout.splitlines()[-1]))


def test_the_docs_name_module_paths() -> None:
    assert len(named_paths()) >= 10  # the scan finds what it should


@pytest.mark.parametrize("path,doc", named_paths())
def test_every_module_path_in_the_docs_imports(path: str, doc: str,
                                               import_errors: dict[str, str | None]) -> None:
    error = import_errors[path]
    assert error is None, f"{doc} names {path}, which does not import: {error}"


def named_files() -> list[tuple[str, str]]:
    found: dict[str, str] = {}
    for doc in DOCS:
        for path in REPO_PATH.findall(doc.read_text()):
            found.setdefault(path, doc.relative_to(REPO).as_posix())
    return sorted(found.items())


def test_the_docs_name_checkout_paths() -> None:
    assert len(named_files()) >= 10


@pytest.mark.parametrize("path,doc", named_files())
def test_every_checkout_path_in_the_docs_exists(path: str, doc: str) -> None:
    assert (REPO / path).exists(), f"{doc} names {path}, which is not in the checkout"
