#!/usr/bin/env bash
# Regenerates docs/img/report.png, the README's picture of `modelmon report`,
# from a real run: `modelmon demo` (model server, traffic, Prometheus) for a
# few minutes (with its alerts), then `modelmon report` over that period, photographed by
# headless Chromium (Debian `chromium`).
#   bash docs/img/report.sh            # about 5 minutes
#   RUN_SECONDS=60 bash docs/img/report.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
run_seconds=${RUN_SECONDS:-270}
work=$(mktemp -d -t modelmon-report-XXXXXX)
free_port() { .venv/bin/python -c 'from modelmon.demo.processes import free_port; print(free_port())'; }
prometheus=$(free_port)
alertmanager=$(free_port)
.venv/bin/modelmon demo --plain --no-report --duration $((run_seconds + 120)) \
  --prometheus-port "$prometheus" --alertmanager-port "$alertmanager" --app-port 0 \
  --exporter-port 0 --webhook-port 0 --edge-proxy-port 0 --edge-listen-port 0 \
  --workdir "$work/demo" >"$work/demo.log" 2>&1 &
demo=$!
trap 'kill "$demo" 2>/dev/null || true; wait "$demo" 2>/dev/null || true' EXIT
for _ in $(seq 120); do
  curl -fs "http://127.0.0.1:$prometheus/-/ready" >/dev/null 2>&1 && break
  kill -0 "$demo" 2>/dev/null || { cat "$work/demo.log"; exit 1; }
  sleep 1
done
echo "demo running (log: $work/demo.log); reporting in ${run_seconds}s"
sleep "$run_seconds"
# The demo's rules use its own thresholds (windows of seconds): the report's
# burn-rate panels read the recording rules of the same config.
.venv/bin/modelmon report --prometheus "http://127.0.0.1:$prometheus" --since "${run_seconds}s" \
  --alertmanager "http://127.0.0.1:$alertmanager" --config demo/thresholds.yml \
  --out "$work/report.html"
# Photographed through the DevTools protocol, as the tests open it (chromium's own
# --screenshot flag can hang on a page that keeps drawing after load).
(cd tests && ../.venv/bin/python - "$work/report.html" "$root/docs/img/report.png" <<'PY'
import sys
from pathlib import Path

from support.chromium import open_page

report, png = Path(sys.argv[1]), Path(sys.argv[2])
with open_page(report.as_uri(), width=1400, height=1500) as page:
    page.wait_until("[...document.querySelectorAll('.chart')].every(el => "
                    "el.getBoundingClientRect().top > innerHeight || "
                    "el.classList.contains('js-plotly-plot'))", timeout=120)
    page.evaluate("new Promise(done => setTimeout(done, 500))")  # the last chart's paint
    png.write_bytes(page.screenshot())
PY
)
echo "wrote docs/img/report.png (report: $work/report.html)"
