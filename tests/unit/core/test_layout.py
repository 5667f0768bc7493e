"""The layout is the architecture: packages are all shipped, and core never
imports the folders that build on it."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
ROOTS = {"core": "modelmon", "exporters": "modelmon.exporters",
         "plugins": "modelmon.plugins", "dashboards": "modelmon.dashboards",
         "demo": "modelmon.demo"}
# The public facade resolves ModelMonitor & co. lazily; no other core module
# names the folders that build on it (the products add their commands as
# plugins, by import path).
LAZY_ALLOWED = {"core/__init__.py"}


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


def _all_imports(tree: ast.Module):
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield node.module


def test_core_never_imports_exporters_plugins_dashboards_or_demo():
    for path in (REPO / "core").rglob("*.py"):
        rel = str(path.relative_to(REPO))
        if rel in LAZY_ALLOWED:
            continue
        for module in _all_imports(ast.parse(path.read_text())):
            assert not module.startswith(
                ("modelmon.exporters", "modelmon.plugins", "modelmon.dashboards", "modelmon.demo")
            ), f"{rel} imports {module}: core must not depend on it"


def test_no_folder_at_the_checkout_root_shadows_the_package():
    assert not (REPO / "modelmon").exists(), (
        "a top-level modelmon/ folder shadows the installed package when Python runs "
        "from the checkout root; the core lives in core/"
    )


def test_every_package_says_what_it_is_for():
    for folder in ROOTS:
        for init in (REPO / folder).rglob("__init__.py"):
            doc = ast.get_docstring(ast.parse(init.read_text()))
            assert doc, f"{init.relative_to(REPO)}: state the package's one job in its docstring"


def test_the_public_names_resolve():
    import modelmon

    for name in modelmon.__all__:
        assert getattr(modelmon, name) is not None, name
    from modelmon.exporters.logs import LogShipper
    from modelmon.exporters.quality.profile import Profile

    assert modelmon.LogShipper is LogShipper and modelmon.Profile is Profile


def test_loading_every_command_stays_light():
    """The products' commands are loaded for every ``modelmon`` command (the
    edge agent's included): they must not pull in numpy, Flask or the spool (13 MB
    of the edge agent's RSS when they did), nor requests, the Docker SDK, NVML or
    plotly (requests, through the demo's port checks, cost it 7 MB)."""
    import subprocess
    import sys

    code = ("import sys\nfrom modelmon.cli import build_parser\nbuild_parser()\n"
            "print(','.join(m for m in ('numpy', 'flask', 'modelmon.spool', 'pandas', 'requests', 'docker', 'pynvml', 'plotly')"
            " if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"building the command line imported {out.stdout.strip()}"
