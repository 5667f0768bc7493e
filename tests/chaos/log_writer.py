"""A model server stand-in for the chaos loop: emits events through a LogShipper
to Elasticsearch and prints each event's marker once ``emit`` returned
(acknowledged). The chaos loop SIGKILLs it at a random moment."""

from __future__ import annotations

import sys

from modelmon.exporters.logs import LogShipper
from prometheus_client import CollectorRegistry


def main() -> None:
    spool_dir, url, run = sys.argv[1], sys.argv[2], int(sys.argv[3])
    shipper = LogShipper(sink="elasticsearch", url=url, index="logs-modelmon-chaos",
                         spool_dir=spool_dir, registry=CollectorRegistry(), batch_size=200,
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
