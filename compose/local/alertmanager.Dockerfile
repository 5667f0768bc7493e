# Alertmanager from the Debian package on the debootstrapped base image
# (compose/local-images.sh). One step: under dockerd's vfs storage driver every
# step copies the whole image. The entrypoint, user and data directory are set
# in compose/docker-compose.local.yml.
ARG BASE=modelmon-base:bookworm
FROM ${BASE}
RUN apt-get update -qq \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
         prometheus-alertmanager \
    && apt-get clean && rm -rf /var/lib/apt/lists/* /usr/share/doc/* /usr/share/man/* \
    && mkdir -p /alertmanager && chown prometheus:prometheus /alertmanager
