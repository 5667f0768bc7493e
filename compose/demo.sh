#!/usr/bin/env bash
# The README's main command: a live model-monitoring demo on this machine.
# Installs Prometheus from the OS packages when missing, sets up .venv, then
# runs `modelmon demo` (arguments are passed on; Ctrl-C stops everything).
set -euo pipefail
cd "$(dirname "$0")/.."
. compose/bootstrap.sh
ensure_debian_packages prometheus=prometheus
ensure_venv demo
exec .venv/bin/modelmon demo "$@"
