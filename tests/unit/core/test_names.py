"""One name per thing: no two public classes of the package share a name.

Two types with one name (``SendResult`` of the log sinks and of remote_write,
``EdgeConfig`` of the agent and of the alert thresholds) make a reader, an
import and a traceback ambiguous. Classes are read from the source, so a
re-export (``from .config import EdgeConfig``) is not a second definition.
"""

from __future__ import annotations

import ast
import tomllib
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]


def _package_modules() -> dict[str, Path]:
    """Module name -> source file, for every module setuptools ships."""
    setuptools = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    package_dir: dict[str, str] = setuptools["package-dir"]
    modules: dict[str, Path] = {}
    for package in setuptools["packages"]:
        # The folder of a package: its own package-dir entry, or its parent's plus its name.
        parts = package.split(".")
        for depth in range(len(parts), 0, -1):
            mapped = package_dir.get(".".join(parts[:depth]))
            if mapped is not None:
                folder = REPO / mapped / Path(*parts[depth:])
                break
        for path in folder.glob("*.py"):
            name = package if path.stem == "__init__" else f"{package}.{path.stem}"
            modules[name] = path
    return modules


def _public_classes(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    return [node.name for node in tree.body
            if isinstance(node, ast.ClassDef) and not node.name.startswith("_")]


def test_modules_are_found():
    modules = _package_modules()
    assert "modelmon.exporters.service.monitor" in modules
    assert "modelmon.metrics" in modules
    assert "ModelMonitor" in _public_classes(modules["modelmon.exporters.service.monitor"])


def test_no_two_public_classes_share_a_name():
    where: dict[str, list[str]] = defaultdict(list)
    for module, path in sorted(_package_modules().items()):
        for name in _public_classes(path):
            where[name].append(module)
    shared = {name: modules for name, modules in where.items() if len(modules) > 1}
    assert not shared, "public classes defined twice under one name (rename one):\n" + "\n".join(
        f"  {name}: {', '.join(modules)}" for name, modules in sorted(shared.items())
    )
