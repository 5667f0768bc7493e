#!/usr/bin/env bash
# The README's main command: the live model-monitoring demo on this machine.
# Installs Prometheus and Alertmanager from the OS packages when missing, sets
# up .venv, then runs `modelmon demo` (arguments are passed on, e.g.
# --scenario errors --check; Ctrl-C stops everything). The installers' output
# goes to .demo-setup.log, so the first screen is the demo itself.
set -euo pipefail
cd "$(dirname "$0")/.."
. compose/bootstrap.sh
SETUP_LOG="${MODELMON_SETUP_LOG:-$PWD/.demo-setup.log}"
echo "modelmon demo: setting up (Debian packages, .venv); details in $SETUP_LOG"
if ! {
  ensure_debian_packages prometheus=prometheus prometheus-alertmanager=prometheus-alertmanager
  ensure_venv demo
} >"$SETUP_LOG" 2>&1; then
  echo "modelmon demo: set-up failed; the end of $SETUP_LOG:" >&2
  tail -n 30 "$SETUP_LOG" >&2
  exit 1
fi
exec .venv/bin/modelmon demo "$@"
