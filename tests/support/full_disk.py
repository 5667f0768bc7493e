"""A real full disk for tests: a small tmpfs mounted on a temporary directory.

No fault injection: SQLite, the journal and the status file meet ENOSPC
exactly as on a device whose card filled up. Mounting needs root (or a user
namespace); without it the tests skip and say why.
"""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path


class SmallDisk:
    """A tmpfs of ``size`` bytes at ``path``; ``fill()`` takes every free byte."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._filler = path / "filler"

    def fill(self) -> None:
        """Write zeros until the filesystem refuses (ENOSPC)."""
        fd = os.open(self._filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        block = b"\0" * 4096
        try:
            while True:
                try:
                    os.write(fd, block)
                except OSError as exc:
                    if exc.errno != errno.ENOSPC:
                        raise
                    break
            for size in (512, 64, 1):  # the last partial block
                with contextlib.suppress(OSError):
                    while os.write(fd, b"\0" * size):
                        pass
        finally:
            os.close(fd)

    def free(self) -> None:
        """Give the space back."""
        self._filler.unlink(missing_ok=True)

    def available(self) -> int:
        st = os.statvfs(self.path)
        return st.f_bavail * st.f_frsize


@contextlib.contextmanager
def small_disk(size: str = "4m") -> Iterator[SmallDisk | str]:
    """Yields a ``SmallDisk``, or the reason a filesystem cannot be mounted here."""
    mount_point = Path(tempfile.mkdtemp(prefix="modelmon-small-disk-"))
    try:
        proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs",
                               str(mount_point)], capture_output=True, text=True, check=False)
    except OSError as exc:
        proc = None
        reason = f"cannot run mount: {exc}"
    if proc is not None and proc.returncode != 0:
        reason = f"cannot mount a small tmpfs (needs root): {proc.stderr.strip()}"
    if proc is None or proc.returncode != 0:
        mount_point.rmdir()
        yield reason
        return
    try:
        yield SmallDisk(mount_point)
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False, capture_output=True)
        with contextlib.suppress(OSError):
            mount_point.rmdir()
