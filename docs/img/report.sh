#!/usr/bin/env bash
# Regenerates docs/img/report.png, the README's picture of `modelmon report`,
# from a real run: `modelmon demo` (model server, traffic, Prometheus) for a
# few minutes, then `modelmon report` over that period, photographed by
# headless Chromium (Debian `chromium`).
#   bash docs/img/report.sh            # about 5 minutes
#   RUN_SECONDS=60 bash docs/img/report.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
run_seconds=${RUN_SECONDS:-270}
work=$(mktemp -d -t modelmon-report-XXXXXX)
port=$(.venv/bin/python -c 'from modelmon.demo.processes import free_port; print(free_port())')
.venv/bin/modelmon demo --app-port 0 --exporter-port 0 --prometheus-port "$port" \
  --duration $((run_seconds + 120)) --workdir "$work/demo" >"$work/demo.log" 2>&1 &
demo=$!
trap 'kill "$demo" 2>/dev/null || true; wait "$demo" 2>/dev/null || true' EXIT
for _ in $(seq 120); do
  curl -fs "http://127.0.0.1:$port/-/ready" >/dev/null 2>&1 && break
  kill -0 "$demo" 2>/dev/null || { cat "$work/demo.log"; exit 1; }
  sleep 1
done
echo "demo running (log: $work/demo.log); reporting in ${run_seconds}s"
sleep "$run_seconds"
.venv/bin/modelmon report --prometheus "http://127.0.0.1:$port" --since "${run_seconds}s" \
  --out "$work/report.html"
chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync \
  --hide-scrollbars --user-data-dir="$work/chromium" --window-size=1400,1500 \
  --virtual-time-budget=10000 --screenshot="$PWD/docs/img/report.png" \
  "file://$work/report.html" 2>"$work/chromium.log"
echo "wrote docs/img/report.png (report: $work/report.html)"
