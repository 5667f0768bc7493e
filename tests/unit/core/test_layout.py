"""The layout is the architecture: packages are all shipped, and core never
imports the folders that build on it."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
ROOTS = {"modelmon": "modelmon", "exporters": "modelmon.exporters",
         "plugins": "modelmon.plugins", "dashboards": "modelmon.dashboards"}
# Core modules allowed to import exporters lazily (inside functions): the
# public facade and the CLI command handlers.
LAZY_ALLOWED = {"modelmon/__init__.py"}


def test_every_package_directory_is_listed_in_pyproject():
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    for folder, name in ROOTS.items():
        assert config["package-dir"][name] == folder
        for init in (REPO / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(REPO / folder)
            package = ".".join([name, *rel.parts])
            assert package in listed, (
                f"{init.parent} is a package but '{package}' is missing from "
                "[tool.setuptools] packages in pyproject.toml: the wheel would not ship it"
            )


def _module_level_imports(tree: ast.Module):
    for node in tree.body:
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield node.module


def test_core_does_not_import_exporters_plugins_or_dashboards_at_import_time():
    for path in (REPO / "modelmon").rglob("*.py"):
        rel = str(path.relative_to(REPO))
        if rel in LAZY_ALLOWED:
            continue
        for module in _module_level_imports(ast.parse(path.read_text())):
            assert not module.startswith(
                ("modelmon.exporters", "modelmon.plugins", "modelmon.dashboards")
            ), f"{rel} imports {module} at module level: core must not depend on it"


def test_the_public_names_resolve():
    import modelmon

    for name in modelmon.__all__:
        assert getattr(modelmon, name) is not None, name
    from modelmon.exporters.logs import LogShipper
    from modelmon.exporters.quality.profile import Profile

    assert modelmon.LogShipper is LogShipper and modelmon.Profile is Profile
