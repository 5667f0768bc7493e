"""A fresh virtual environment with modelmon installed from a wheel built
from the checkout, the way a user's ``pip install .`` gets it (non-editable).

No network: the third-party dependencies come from the running test
environment, added to the new venv's path by a ``.pth`` file; modelmon itself
comes only from the wheel. The checkout is copied before the build, so
concurrent builds never share ``build/`` or ``*.egg-info`` in the work tree.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
import venv
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
_NOT_SOURCE = shutil.ignore_patterns(".git", ".venv", "build", "dist", "*.egg-info",
                                     "__pycache__", ".ruff_cache", ".mypy_cache", "node_modules")


def run(args: Sequence[str | Path], cwd: Path | None = None) -> str:
    """Run a command; its output on success, its output in the failure otherwise."""
    proc = subprocess.run([str(a) for a in args], capture_output=True, text=True,
                          timeout=300, cwd=cwd)
    assert proc.returncode == 0, f"{args}\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def build_wheel(project: Path, dist: Path, workdir: Path) -> Path:
    """The wheel of ``project`` (a copy of it is built, not the tree itself)."""
    copy = workdir / f"src-{project.name}"
    shutil.copytree(project, copy, ignore=_NOT_SOURCE, symlinks=True)
    before = set(dist.glob("*.whl")) if dist.exists() else set()
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
         "-w", dist, copy])
    [wheel] = set(dist.glob("*.whl")) - before
    return wheel


def venv_with(wheels: Sequence[Path], env_dir: Path) -> Path:
    """A new venv at ``env_dir`` with ``wheels`` installed; its python."""
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = env_dir / "bin" / "python"
    run([python, "-m", "pip", "install", "-q", "--no-deps", "--no-index", *wheels])
    purelib = run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"])
    Path(purelib.strip(), "_test_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return python


def installed_modelmon(tmp_path: Path) -> Path:
    """The python of a fresh venv where modelmon was installed from this checkout."""
    wheel = build_wheel(REPO, tmp_path / "dist", tmp_path)
    return venv_with([wheel], tmp_path / "venv")
