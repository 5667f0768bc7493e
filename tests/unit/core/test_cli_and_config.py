"""The modelmon command: --help everywhere, --version, kpis, config errors."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest

import modelmon
from modelmon.catalog import CATALOG
from modelmon.cli import build_parser, main
from modelmon.config import ConfigError, load_serve_config

REPO = Path(__file__).resolve().parents[3]


def _all_commands(parser, prefix=()):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield (*prefix, name)
                yield from _all_commands(sub, (*prefix, name))


@pytest.mark.parametrize("command", list(_all_commands(build_parser())), ids=" ".join)
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([*command, "--help"])
    assert exit_info.value.code == 0
    assert "usage: modelmon" in capsys.readouterr().out


def test_version():
    out = subprocess.run([sys.executable, "-m", "modelmon", "--version"],
                         capture_output=True, text=True, check=True).stdout
    assert out.strip() == f"modelmon {modelmon.__version__}"


def test_kpis_formats(capsys):
    assert main(["kpis", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in rows] == [k.full_name() for k in CATALOG]
    # Where a KPI is shown and what watches it is computed from the generated
    # dashboards and rules, not stored in the catalog.
    requests = rows[[k.name for k in CATALOG].index("inference_requests_total")]
    assert (requests["dashboard"], requests["row"]) == ("model-service", "Traffic and errors")
    assert "ModelErrorBudgetBurningFast" in requests["alerts"]
    assert {"dashboard": "model-service", "dashboard_title": "modelmon / Model service",
            "row": "Traffic and errors", "title": "Error ratio"} in requests["panels"]
    assert main(["kpis", "--format", "table", "--prefix", "acme_"]) == 0
    assert "acme_inference_requests_total" in capsys.readouterr().out
    assert main(["kpis", "--format", "markdown"]) == 0
    assert "| `modelmon_inference_in_flight` | gauge |" in capsys.readouterr().out


def test_docs_kpis_md_is_fresh():
    assert main(["kpis", "--check", "--doc", str(REPO / "docs" / "KPIS.md")]) == 0, (
        "docs/KPIS.md is stale: run 'modelmon kpis --write'"
    )


def test_kpis_check_fails_on_a_stale_file(tmp_path, capsys):
    stale = tmp_path / "KPIS.md"
    stale.write_text("# old\n")
    assert main(["kpis", "--check", "--doc", str(stale)]) == 1
    assert "modelmon kpis --write" in capsys.readouterr().err


@pytest.mark.parametrize("yaml_text,fragment", [
    ("listen: 9110", "listen: expected HOST:PORT"),
    ("threads: many", "threads: expected a positive integer"),
    ("ingest: {max_body_bytes: lots}", "ingest.max_body_bytes: expected a size"),
    ("ingest: {max_bytes: 1}", "ingest: unknown key(s) max_bytes"),
    ("buckets: {inference_duration_seconds: [1, 0.5]}", "buckets.inference_duration_seconds"),
    ("buckets: {inference_latency: [1]}", "buckets.inference_latency: not a histogram"),
    ("buckets: {inference_requests_total: [1]}", "buckets.inference_requests_total: not a hist"),
    ("listn: 1.2.3.4:9", "unknown key(s) listn"),
    ("prefix: 'bad-prefix'", "prefix: expected letters"),
    ("- a list", "top level must be a mapping"),
    ("a: [unclosed", "not valid YAML"),
])
def test_config_errors_name_the_field(tmp_path, yaml_text, fragment):
    path = tmp_path / "serve.yml"
    path.write_text(yaml_text)
    with pytest.raises(ConfigError) as err:
        load_serve_config(path)
    assert fragment in str(err.value) and str(path) in str(err.value)
    assert str(err.value).count(str(path)) == 1, "the file is named once"


def test_serve_reports_config_errors_without_a_traceback(tmp_path):
    path = tmp_path / "serve.yml"
    path.write_text("threads: 0\n")
    proc = subprocess.run([sys.executable, "-m", "modelmon", "serve", "--config", str(path)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "threads: expected a positive integer" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_config_defaults_and_values(tmp_path):
    path = tmp_path / "serve.yml"
    path.write_text("listen: 0.0.0.0:9200\ningest: {max_body_bytes: 2MiB}\n")
    config = load_serve_config(path)
    assert (config.host, config.port, config.ingest.max_body_bytes) == ("0.0.0.0", 9200, 2 * 2**20)
