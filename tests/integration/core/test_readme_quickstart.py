"""The README quickstart runs as written, top to bottom, against modelmon
installed from a wheel into a fresh venv (``pip install .``), from the
checkout root: its Python blocks in one session, then its ``modelmon serve``
and ``curl`` commands."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from modelmon.demo.processes import free_port, wait_http_ok
from support.fresh_venv import REPO, installed_modelmon

HEADING = "## 60-second quickstart"


def quickstart_blocks(lang: str) -> list[str]:
    text = (REPO / "README.md").read_text()
    assert HEADING in text, f"README.md has no '{HEADING}' section"
    section = text.split(HEADING, 1)[1].split("\n## ", 1)[0]
    return [body for kind, body in re.findall(r"```(\w*)\n(.*?)```", section, re.S)
            if kind == lang]


@pytest.fixture(scope="module")
def venv_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return installed_modelmon(tmp_path_factory.mktemp("quickstart"))


def test_the_quickstart_installs_this_checkout() -> None:
    # The fixture's wheel stands for this line (no network in the tests).
    assert quickstart_blocks("sh")[0].startswith("pip install . ")


def test_the_python_blocks_run_top_to_bottom_and_print_what_they_say(venv_python: Path) -> None:
    blocks = quickstart_blocks("python")
    assert len(blocks) >= 2, "the quickstart lost its Python blocks"
    code = "\n".join(blocks)
    # Where the code came from: the wheel, even with the checkout first on sys.path.
    probe = ("\nimport modelmon.exporters.service.monitor as _m\n"
             "print('MODELMON_FROM', _m.__file__)\n")
    proc = subprocess.run([str(venv_python), "-c", code + probe], cwd=REPO,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    origin = proc.stdout.rsplit("MODELMON_FROM ", 1)[1].strip()
    assert origin.startswith(str(venv_python.parent.parent)), origin
    # The output the README shows in comments is what it prints.
    shown = [line[2:] for line in code.splitlines() if line.startswith("# modelmon_")]
    assert shown, "the quickstart shows no output"
    for line in shown:
        assert line in proc.stdout.splitlines(), f"{line!r} not printed:\n{proc.stdout}"
    assert "200" in proc.stdout.splitlines()  # /metrics of the instrumented Flask app


def test_the_serve_and_curl_commands_run_as_written(venv_python: Path) -> None:
    curl = shutil.which("curl")
    if curl is None:  # fail, never skip: tests/run.sh installs it
        pytest.fail("curl missing; run the README test command (bash tests/run.sh)")
    blocks = quickstart_blocks("sh")
    [serve_line] = [line for block in blocks for line in block.splitlines()
                    if line.startswith("modelmon serve")]
    [curl_block] = [block for block in blocks if block.startswith("curl")]
    # The one change: a free port instead of 9110, which may be taken on this machine.
    port = free_port()
    args = shlex.split(serve_line, comments=True) + ["--listen", f"127.0.0.1:{port}"]
    env = {**os.environ, "PATH": f"{venv_python.parent}{os.pathsep}{os.environ['PATH']}"}
    server = subprocess.Popen(args, cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE)
    try:
        wait_http_ok(f"http://127.0.0.1:{port}/healthz", 60, server)
        assert "localhost:9110" in curl_block
        script = curl_block.replace("localhost:9110", f"127.0.0.1:{port}")
        proc = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=REPO, env=env,
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert '"accepted":1' in proc.stdout.replace(" ", "")
        assert re.search(r'modelmon_inference_requests_total\{model="recommender",'
                         r'outcome="success",version="2.4.1"\} 1\.0', proc.stdout), proc.stdout
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        assert server.stderr is not None
        server.stderr.close()
