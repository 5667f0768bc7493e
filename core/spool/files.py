"""Owner-only files: a spool holds what was logged, so its directory is 0700
and every file in it (database, WAL, shared memory, journals, id, lock) 0600,
whatever the umask. SQLite gives its -wal and -shm files the mode of the
database file, so creating that one owner-only is enough for SQLite's."""

from __future__ import annotations

import os
from pathlib import Path

DIR_MODE = 0o700
FILE_MODE = 0o600


def make_private_dir(path: Path) -> None:
    """Create ``path`` (and missing parents), make the directory itself 0700 and
    the files already in it 0600 (a spool an earlier version left, under a lax
    umask)."""
    path.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    if path.stat().st_mode & 0o777 != DIR_MODE:
        os.chmod(path, DIR_MODE)
    for entry in os.scandir(path):
        if entry.is_file(follow_symlinks=False) and entry.stat().st_mode & 0o777 != FILE_MODE:
            os.chmod(entry.path, FILE_MODE)


def make_private(path: Path) -> None:
    """Create ``path`` owner-only if it is missing; make it so if it is not
    (a spool written by an earlier version, under a lax umask)."""
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT, FILE_MODE))
    for suffix in ("", "-wal", "-shm"):
        try:
            if os.stat(f"{path}{suffix}").st_mode & 0o777 != FILE_MODE:
                os.chmod(f"{path}{suffix}", FILE_MODE)
        except FileNotFoundError:
            continue


def write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(path, FILE_MODE)
