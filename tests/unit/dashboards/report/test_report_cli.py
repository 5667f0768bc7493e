"""``modelmon report``'s answers to a missing extra and to bad options."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from modelmon.cli import main


def test_without_plotly_it_says_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "plotly.offline", None)  # what a missing package raises
    out = tmp_path / "r.html"
    assert main(["report", "--prometheus", "http://127.0.0.1:9", "--out", str(out)]) == 2
    assert "pip install 'modelmon[report]'" in capsys.readouterr().err
    assert not out.exists()


def test_a_bad_period_names_the_option(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "r.html"
    assert main(["report", "--prometheus", "http://127.0.0.1:9", "--out", str(out),
                 "--since", "yesterday"]) == 2
    assert "--since" in capsys.readouterr().err
    assert not out.exists()
