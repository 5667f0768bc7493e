#!/usr/bin/env bash
# Builds the compose stack's images without Docker Hub (compose/local_images.py:
# debootstrap, docker import, docker build of modelmon from this checkout and of
# the Debian packages' Prometheus and Alertmanager). Installs debootstrap,
# docker.io and docker-compose when missing and sets up .venv (its pip builds
# the wheels). Arguments are passed on (--force, --cache DIR). Then:
#   docker-compose -f compose/docker-compose.yml -f compose/docker-compose.local.yml up -d
set -euo pipefail
cd "$(dirname "$0")/.."
. compose/bootstrap.sh
ensure_debian_packages debootstrap=debootstrap dockerd=docker.io docker-compose=docker-compose
ensure_venv demo
exec .venv/bin/python compose/local_images.py "$@"
