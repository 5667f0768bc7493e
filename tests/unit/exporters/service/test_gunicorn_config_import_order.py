"""gunicorn_config must run before anything imports prometheus_client: the
client picks its value class once, at import. If ``import modelmon`` (or the
service package) imported prometheus_client first, every worker would keep its
metrics in memory and a multi-worker server's /metrics would show none of them."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize("config_module", ["modelmon.exporters.service.gunicorn_config",
                                           "modelmon.exporters.gunicorn_config"])
def test_loading_the_gunicorn_config_first_selects_multiprocess_values(config_module, tmp_path):
    code = (
        f"import {config_module}\n"
        "from prometheus_client import values\n"
        "print(values.ValueClass.__name__)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=tmp_path, env={"PATH": "/usr/bin:/bin"})
    assert out.stdout.strip() == "MmapedValue", (
        "prometheus_client was imported before the gunicorn config set "
        f"PROMETHEUS_MULTIPROC_DIR (value class {out.stdout.strip()!r})")


def test_import_modelmon_does_not_import_prometheus_client():
    code = "import sys, modelmon, modelmon.exporters.service; print('prometheus_client' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
