"""mypy --strict is clean over the whole package (settings: [tool.mypy] in
pyproject.toml; tests/typecheck.py lays the package out as installed)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]


def test_mypy_strict_passes():
    proc = subprocess.run([sys.executable, str(REPO / "tests" / "typecheck.py")], cwd=REPO,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
