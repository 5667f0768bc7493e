"""Run `mypy --strict` over the whole modelmon package, laid out as it is installed.

mypy cannot see through setuptools' package-dir mapping (core/ is `modelmon`,
exporters/ is `modelmon.exporters`, ...): the editable install resolves it with
an import hook that mypy does not run, and from the checkout root there is no
`modelmon/` folder at all. So this lays the package out in a temporary folder
as symlinks, following [tool.setuptools] package-dir in pyproject.toml, and runs
mypy there with the [tool.mypy] settings of the same file.

    python tests/typecheck.py      # prints mypy's report; exits with mypy's status
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PYPROJECT = REPO / "pyproject.toml"


def lay_out_package(root: Path) -> Path:
    """Build `root/modelmon` from the package-dir mapping; return its path."""
    mapping: dict[str, str] = tomllib.loads(PYPROJECT.read_text())["tool"]["setuptools"][
        "package-dir"]
    top = mapping.pop("modelmon")
    package = root / "modelmon"
    package.mkdir()
    for entry in (REPO / top).iterdir():
        if entry.name != "__pycache__":
            (package / entry.name).symlink_to(entry)
    for name, folder in sorted(mapping.items()):
        parent, _, leaf = name.rpartition(".")
        # Only direct subpackages of modelmon are mapped today; a deeper one
        # would need its parent laid out as a real folder first.
        assert parent == "modelmon", f"unsupported package-dir entry {name!r}"
        (package / leaf).symlink_to(REPO / folder)
    return package


def run_mypy(*extra: str) -> subprocess.CompletedProcess[str]:
    with tempfile.TemporaryDirectory(prefix="modelmon-typecheck-") as tmp:
        lay_out_package(Path(tmp))
        return subprocess.run(
            [sys.executable, "-m", "mypy", "--config-file", str(PYPROJECT),
             "--cache-dir", str(Path(tmp) / ".mypy_cache"), *extra, "modelmon"],
            cwd=tmp, capture_output=True, text=True, timeout=600,
        )


def main() -> int:
    proc = run_mypy(*sys.argv[1:])
    sys.stdout.write(proc.stdout)
    sys.stderr.write(proc.stderr)
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main())
