# Prometheus from the Debian package on the debootstrapped base image
# (compose/local-images.sh). One step: under dockerd's vfs storage driver every
# step copies the whole image. The entrypoint, user and data directory are set
# in compose/docker-compose.local.yml.
ARG BASE=modelmon-base:bookworm
FROM ${BASE}
# moment-timezone's data (214 MB) is cut to the one file the web UI loads.
RUN apt-get update -qq \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus \
    && find /usr/share/javascript/moment-timezone -mindepth 1 -maxdepth 1 \
         ! -name moment-timezone-with-data.min.js -exec rm -rf {} + \
    && apt-get clean && rm -rf /var/lib/apt/lists/* /usr/share/doc/* /usr/share/man/* \
    && mkdir -p /prometheus && chown prometheus:prometheus /prometheus
