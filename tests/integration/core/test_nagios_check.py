"""``modelmon check`` run by a real Nagios core (Debian ``nagios4``) against a
real Prometheus: the service states Nagios records (status.dat) are the
plugin's verdicts, with its performance data.

The series the checks read are served by a small target (the recording
rules' output names, with values the test chooses): the rules themselves are
tested against Prometheus elsewhere (tests/integration/dashboards); here what
is under test is the plugin's queries, thresholds and the Nagios plugin API.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from modelmon.demo.processes import PrometheusProcess, prometheus_config, start_prometheus

pytestmark = pytest.mark.integration

NOW = time.time()
SERIES = f"""\
model:modelmon_inference_errors:ratio_rate1h{{model="fraud"}} 0.02
model:modelmon_inference_errors:ratio_rate1h{{model="churn"}} 0.0001
modelmon:feedback_accuracy:1h{{model="fraud",version="3"}} 0.85
modelmon:feature_drift:1h{{model="fraud",version="3",feature="amount",method="psi"}} 0.31
modelmon:feature_drift:1h{{model="fraud",version="3",feature="age",method="psi"}} 0.02
modelmon_edge_last_send_success_timestamp_seconds{{device="press-7"}} {NOW - 400:.3f}
"""
# service -> (arguments of modelmon check, the state Nagios must record)
SERVICES = {
    "fraud-burn": ("burn-rate --model fraud", 2),     # 0.02 / 0.001 = 20 > 14.4
    "churn-burn": ("burn-rate --model churn", 0),     # 0.1
    "fraud-accuracy": ("accuracy --model fraud", 1),  # 0.85: below 0.9, above 0.8
    "fraud-drift": ("drift --model fraud --version 3", 2),  # the worst feature: 0.31 > 0.25
    "press-7-link": ("edge-link --device press-7", 1),  # ~400 s: over 300, under 900
    "ghost-burn": ("burn-rate --model ghost", 3),     # no data: UNKNOWN, never OK
    "custom-range": ("accuracy --model fraud -w @0.8:0.9 -c 0.5:", 1),  # inside the @ range
}


def _nagios() -> str:
    binary = shutil.which("nagios4") or ("/usr/sbin/nagios4" if os.path.exists(
        "/usr/sbin/nagios4") else None)
    if binary is None:  # fail, never skip
        pytest.fail("nagios4 missing; run the README test command (bash tests/run.sh)")
    return binary


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[PrometheusProcess]:
    body = SERIES.encode()

    class Target(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    target = ThreadingHTTPServer(("127.0.0.1", 0), Target)
    threading.Thread(target=target.serve_forever, args=(0.05,), daemon=True).start()
    prom = start_prometheus(prometheus_config([f"127.0.0.1:{target.server_port}"]),
                            workdir=tmp_path / "prometheus")
    try:
        prom.wait_for('modelmon_edge_last_send_success_timestamp_seconds{device="press-7"}')
        yield prom
    finally:
        prom.stop()
        target.shutdown()
        target.server_close()


def _config(root: Path, prometheus_url: str) -> Path:
    modelmon = Path(sys.executable).with_name("modelmon")
    user = "root" if os.geteuid() == 0 else os.environ.get("USER", "nobody")
    (root / "spool").mkdir()
    objects = [
        "define timeperiod {\n timeperiod_name always\n alias always\n"
        " sunday 00:00-24:00\n monday 00:00-24:00\n tuesday 00:00-24:00\n"
        " wednesday 00:00-24:00\n thursday 00:00-24:00\n friday 00:00-24:00\n"
        " saturday 00:00-24:00\n}",
        "define command {\n command_name notify_nobody\n command_line /bin/true\n}",
        f"define command {{\n command_name modelmon_check\n"
        f" command_line {modelmon} check $ARG1$ --prometheus {prometheus_url}\n}}",
        "define contact {\n contact_name ops\n host_notifications_enabled 0\n"
        " service_notifications_enabled 0\n host_notification_period always\n"
        " service_notification_period always\n host_notification_options n\n"
        " service_notification_options n\n host_notification_commands notify_nobody\n"
        " service_notification_commands notify_nobody\n}",
        "define host {\n host_name modelmon\n address 127.0.0.1\n max_check_attempts 1\n"
        " check_period always\n notification_period always\n notification_interval 0\n"
        " contacts ops\n active_checks_enabled 0\n}",
    ]
    for name, (args, _) in SERVICES.items():
        objects.append(
            f"define service {{\n host_name modelmon\n service_description {name}\n"
            f" check_command modelmon_check!{args}\n max_check_attempts 1\n"
            " check_interval 2\n retry_interval 2\n check_period always\n"
            " notification_period always\n notification_interval 0\n contacts ops\n}")
    (root / "objects.cfg").write_text("\n".join(objects) + "\n")
    cfg = root / "nagios.cfg"
    cfg.write_text(f"""\
cfg_file={root}/objects.cfg
log_file={root}/nagios.log
status_file={root}/status.dat
status_update_interval=1
check_result_path={root}/spool
lock_file={root}/nagios.lock
temp_file={root}/nagios.tmp
temp_path={root}
state_retention_file={root}/retention.dat
retain_state_information=0
use_retained_program_state=0
use_retained_scheduling_info=0
object_cache_file={root}/objects.cache
precached_object_file={root}/objects.precache
nagios_user={user}
nagios_group={"root" if user == "root" else user}
interval_length=1
service_inter_check_delay_method=n
host_inter_check_delay_method=n
max_service_check_spread=1
check_result_reaper_frequency=1
check_external_commands=0
enable_notifications=0
enable_flap_detection=0
log_rotation_method=n
illegal_macro_output_chars=`~$&|'"<>
""")
    return cfg


def _states(status: Path) -> dict[str, tuple[int, str, str]]:
    """service -> (current_state, plugin_output, performance_data), once checked."""
    if not status.exists():
        return {}
    out = {}
    for block in re.findall(r"servicestatus \{(.*?)\}", status.read_text(), re.S):
        fields = dict(line.strip().split("=", 1) for line in block.strip().splitlines()
                      if "=" in line)
        if fields.get("has_been_checked") == "1":
            out[fields["service_description"]] = (int(fields["current_state"]),
                                                  fields["plugin_output"],
                                                  fields.get("performance_data", ""))
    return out


def test_nagios_records_the_states_modelmon_check_reports(tmp_path, prometheus) -> None:
    root = tmp_path / "nagios"
    root.mkdir()
    cfg = _config(root, prometheus.url)
    verify = subprocess.run([_nagios(), "-v", str(cfg)], capture_output=True, text=True)
    assert verify.returncode == 0, verify.stdout[-2000:]
    proc = subprocess.Popen([_nagios(), str(cfg)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        states: dict[str, tuple[int, str, str]] = {}
        while time.monotonic() < deadline and len(states) < len(SERVICES):
            time.sleep(0.5)
            states = _states(root / "status.dat")
            assert proc.poll() is None, (root / "nagios.log").read_text()[-2000:]
    finally:
        proc.terminate()
        proc.wait(10)
    assert set(states) == set(SERVICES), (root / "nagios.log").read_text()[-2000:]
    got = {name: state for name, (state, _, _) in states.items()}
    assert got == {name: expected for name, (_, expected) in SERVICES.items()}, states
    state, output, perf = states["fraud-burn"]
    assert output == "MODELMON BURN-RATE CRITICAL - model fraud burn rate 20"
    assert perf == "burn_rate=20;~:6;~:14.4"
    assert states["press-7-link"][2].startswith("seconds_since_delivery=")
    assert states["fraud-accuracy"][2] == "accuracy=0.85;0.9:;0.8:;0;1"
    assert "no data for model ghost" in states["ghost-burn"][1]
