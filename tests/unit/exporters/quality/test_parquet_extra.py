"""modelmon profile build reads training data with pandas and pyarrow, which
modelmon does not install by default: when they are missing, the message
names the extra that brings them, and that extra exists."""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

import pytest

from modelmon.cli import main

REPO = Path(__file__).resolve().parents[4]
INSTALL = "pip install 'modelmon[parquet]'"


def _build(tmp_path: Path, data: Path) -> int:
    return main(["profile", "build", "--data", str(data), "--model", "m",
                 "--out", str(tmp_path / "profile.json")])


def test_without_pandas_the_message_names_the_extra(tmp_path, capsys, monkeypatch):
    data = tmp_path / "train.csv"
    data.write_text("a,b\n1,2\n")
    monkeypatch.setitem(sys.modules, "pandas", None)  # import pandas -> ImportError
    assert _build(tmp_path, data) == 2
    err = capsys.readouterr().err
    assert "needs pandas" in err and INSTALL in err
    assert not (tmp_path / "profile.json").exists()


def test_parquet_without_pyarrow_the_message_names_the_extra(tmp_path, capsys, monkeypatch):
    pytest.importorskip("pandas")
    data = tmp_path / "train.parquet"
    data.write_bytes(b"PAR1")  # never read: the engine import fails first
    for engine in ("pyarrow", "fastparquet"):
        monkeypatch.setitem(sys.modules, engine, None)
    assert _build(tmp_path, data) == 2
    err = capsys.readouterr().err
    assert "needs pyarrow" in err and INSTALL in err


def test_the_extra_holds_pandas_and_pyarrow_and_tests_get_them_too():
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]

    def names(extra: str) -> set[str]:
        return {req.split(">")[0].split("=")[0].split("[")[0].strip() for req in extras[extra]}

    assert {"pandas", "pyarrow"} <= names("parquet")
    assert {"pandas", "pyarrow"} <= names("test")
