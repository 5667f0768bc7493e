"""modelmon profile build refuses data it cannot profile, naming the flag."""

from __future__ import annotations

import pytest

from modelmon.cli import main


@pytest.mark.parametrize("csv,extra,fragment", [
    ("a,b,s\n1,2,x\n3,4,y\n", ["--score-column", "s"], "--score-column: s must hold numbers"),
    ("a,b\n", [], "has no rows"),
    ("a,b\n1,2\n", ["--exclude", "a,b"], "--exclude: no feature columns are left"),
])
def test_bad_training_data_is_refused_with_the_flag_named(tmp_path, capsys, csv, extra, fragment):
    data = tmp_path / "train.csv"
    data.write_text(csv)
    out = tmp_path / "profile.json"
    code = main(["profile", "build", "--data", str(data), "--model", "m", "--out", str(out),
                 *extra])
    assert code == 2
    assert fragment in capsys.readouterr().err
    assert not out.exists()
