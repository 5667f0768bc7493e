#!/usr/bin/env bash
# The README's test command: sets up everything on a fresh Debian/Ubuntu
# machine with Python >= 3.11, then runs pytest. Extra arguments go to pytest.
#   bash tests/run.sh                 # the whole suite
#   bash tests/run.sh tests/unit -x   # a part
set -euo pipefail
cd "$(dirname "$0")/.."
. compose/bootstrap.sh
# Real servers the tests start: Prometheus, promtool, Alertmanager, amtool;
# openssl makes the TLS test certificates; docker-compose validates the demo stack;
# curl runs the README quickstart's commands as written; chromium renders the
# HTML report; victoria-metrics is a second remote_write receiver (edge backfill);
# dockerd runs the docker collector's containers from a static busybox image.
# debootstrap builds the compose stack's local images from Debian packages.
# nagios4 runs `modelmon check` as a Nagios plugin.
# Zabbix 6.0 (server, PHP frontend for its API, PostgreSQL) imports the generated template.
ensure_debian_packages prometheus=prometheus promtool=prometheus \
  amtool=prometheus-alertmanager openssl=openssl docker-compose=docker-compose curl=curl \
  chromium=chromium victoria-metrics=victoria-metrics dockerd=docker.io busybox=busybox-static \
  nagios4=nagios4-core zabbix_server=zabbix-server-pgsql php=zabbix-frontend-php \
  pg_ctlcluster=postgresql debootstrap=debootstrap
ensure_venv test,bench
exec .venv/bin/python -m pytest "$@"
