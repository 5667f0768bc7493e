"""A built wheel installs into a fresh venv, every subpackage imports from it, and
the example third-party plugin installs beside it and is loaded and scraped."""

from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
import tomllib
import venv
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
SUBPACKAGES = sorted(tomllib.loads((REPO / "pyproject.toml").read_text())
                     ["tool"]["setuptools"]["packages"])


def run(args, **kwargs):
    proc = subprocess.run(args, capture_output=True, text=True, timeout=300, **kwargs)
    assert proc.returncode == 0, f"{args}\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def test_wheel_in_a_fresh_venv_with_the_example_plugin(tmp_path):
    dist = tmp_path / "dist"
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
         "-w", str(dist), str(REPO)])
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
         "-w", str(dist), str(REPO / "plugins" / "example-plugin")])
    wheels = sorted(p.name for p in dist.glob("*.whl"))
    assert any(w.startswith("modelmon-") for w in wheels), wheels

    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    py = env_dir / "bin" / "python"
    run([str(py), "-m", "pip", "install", "-q", "--no-deps", "--no-index", *dist.glob("*.whl")])
    # Third-party dependencies come from the test environment (no network needed);
    # modelmon itself must come from the wheel.
    purelib = subprocess.check_output(
        [str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], text=True
    ).strip()
    Path(purelib, "_test_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")

    # From a folder of its own and from the checkout root, where a folder named
    # like the package would shadow the installed one (python -c puts the
    # current directory first on sys.path).
    for cwd in (tmp_path, REPO):
        out = run([str(py), "-c", (
            "import importlib, json, modelmon\n"
            f"mods = {SUBPACKAGES!r}\n"
            "print(json.dumps({m: importlib.import_module(m).__file__ for m in mods}))"
        )], cwd=cwd)
        files = json.loads(out)
        assert set(files) == set(SUBPACKAGES)
        for module, file in files.items():
            assert file.startswith(str(env_dir)), (
                f"{module} imported from {file}, not the wheel (run from {cwd})")

    plugins = json.loads(run([str(env_dir / "bin" / "modelmon"), "plugins", "--json"], cwd=tmp_path))
    names = {p["name"]: p for p in plugins}
    assert names["example"]["status"] == "loaded"
    assert "modelmon_register_collectors" in names["example"]["hooks"]

    temp = tmp_path / "temp"
    temp.write_text("47500\n")
    scrape = (
        "from prometheus_client import CollectorRegistry\n"
        "from modelmon.config import serve_config_from_mapping\n"
        "from modelmon.exporters.service.app import create_app\n"
        "import sys\n"
        "cfg = serve_config_from_mapping({'plugins': {'example': {'temperature_file': sys.argv[1]}}})\n"
        "print(create_app(cfg, registry=CollectorRegistry()).test_client().get('/metrics').data.decode())\n"
    )
    body = run([str(py), "-c", scrape, str(temp)], cwd=tmp_path)
    assert 'example_accelerator_temperature_celsius{chip="0"} 47.5' in body
    assert 'modelmon_collector_success{collector="example_accelerator"} 1.0' in body
    broken = run([str(py), "-c", scrape, str(tmp_path / "missing")], cwd=tmp_path)
    assert 'modelmon_collector_success{collector="example_accelerator"} 0.0' in broken
    assert 'modelmon_collector_success{collector="build_info"} 1.0' in broken
