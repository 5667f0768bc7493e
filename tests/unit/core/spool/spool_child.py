"""A writer process for the SIGKILL tests: appends records and prints each
acknowledged seq (after ``append`` returned) on stdout, until killed."""

from __future__ import annotations

import sys

from modelmon.spool import Spool


def main() -> None:
    path, fsync, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    spool = Spool(path, max_bytes=1 << 30, max_age=None, fsync=fsync)  # type: ignore[arg-type]
    out = sys.stdout
    for i in range(count):
        seq = spool.append(b"event-%d" % i + b"." * 200)
        out.write(f"{seq} {i}\n")
        out.flush()
    spool.close()
    out.write("done\n")
    out.flush()


if __name__ == "__main__":
    main()
