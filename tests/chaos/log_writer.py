"""A model server stand-in for the chaos loop: emits events through a LogShipper
to Elasticsearch and prints each event's marker once ``emit`` returned
(acknowledged). The chaos loop SIGKILLs it at a random moment."""

from __future__ import annotations

import sys

from prometheus_client import CollectorRegistry

from modelmon.exporters.logs import LogShipper

# The backlog reaches ~2.7 M events (460 MB) in 200 iterations: the writer
# emits flat out and its shipper barely gets a turn. Above the default bound
# (512 MiB) drop_oldest would rightly drop, and count, the oldest events; this
# loop is about SIGKILL, so the bound is set out of reach.
SPOOL_BYTES = 8 * 2**30


def main() -> None:
    spool_dir, url, run = sys.argv[1], sys.argv[2], int(sys.argv[3])
    shipper = LogShipper(sink="elasticsearch", url=url, index="logs-modelmon-chaos",
                         spool_dir=spool_dir, registry=CollectorRegistry(), batch_size=200,
                         max_bytes=SPOOL_BYTES,
                         backoff_initial=0.01, backoff_max=0.2, request_timeout=2)
    out = sys.stdout
    out.write("ready\n")
    out.flush()
    for i in range(10**9):
        if shipper.emit({"message": "chaos", "run": run, "i": i}) is not None:
            out.write(f"{run} {i}\n")
            out.flush()


if __name__ == "__main__":
    main()
