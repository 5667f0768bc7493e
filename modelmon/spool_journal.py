"""The spool's append journal: CRC-framed records written by the caller's thread.

Why a journal in front of SQLite: an append must be durable against SIGKILL
when it returns, yet cost the caller only a few microseconds. One ``write(2)``
of a framed record to an append-only file puts it in the kernel (it survives
the process) in about 2 us; a SQLite commit costs ten times that. The spool's
writer thread moves journalled records into SQLite in group commits and
deletes a journal file once everything in it is durable in SQLite.

Frame layout (little endian)::

    magic "MMJ1" | length u32 | seq u64 | created f64 | items u32 | crc32 u32 | payload

The CRC covers length, seq, created, items and the payload, so a torn or
flipped frame is detected; the scanner then resynchronises on the next magic.
"""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

MAGIC = b"MMJ1"
_HEADER = struct.Struct("<4sIQdII")
HEADER_SIZE = _HEADER.size
_BODY = struct.Struct("<IQdI")  # the header fields the CRC covers
# A frame longer than this is certainly a corrupt length field.
MAX_FRAME_PAYLOAD = 256 * 1024 * 1024
JOURNAL_GLOB = "journal-*.log"


def encode(seq: int, created: float, items: int, payload: bytes) -> bytes:
    body = _BODY.pack(len(payload), seq, created, items)
    crc = zlib.crc32(payload, zlib.crc32(body))
    return _HEADER.pack(MAGIC, len(payload), seq, created, items, crc) + payload


@dataclass(frozen=True, slots=True)
class Frame:
    seq: int
    created: float
    items: int
    payload: bytes


@dataclass(frozen=True, slots=True)
class Corrupt:
    """A region of a journal that is not a valid frame (torn write, bit rot)."""

    offset: int
    length: int


def scan(data: bytes) -> Iterator[Frame | Corrupt]:
    """Valid frames of ``data`` in order, and one ``Corrupt`` per unreadable region."""
    pos, end = 0, len(data)
    bad_start: int | None = None
    while pos < end:
        frame = _frame_at(data, pos)
        if frame is None:
            if bad_start is None:
                bad_start = pos
            nxt = data.find(MAGIC, pos + 1)
            pos = end if nxt < 0 else nxt
            continue
        if bad_start is not None:
            yield Corrupt(bad_start, pos - bad_start)
            bad_start = None
        yield frame
        pos += HEADER_SIZE + len(frame.payload)
    if bad_start is not None:
        yield Corrupt(bad_start, end - bad_start)


def _frame_at(data: bytes, pos: int) -> Frame | None:
    if pos + HEADER_SIZE > len(data) or data[pos : pos + 4] != MAGIC:
        return None
    _, length, seq, created, items, crc = _HEADER.unpack_from(data, pos)
    start = pos + HEADER_SIZE
    if length > MAX_FRAME_PAYLOAD or start + length > len(data):
        return None
    payload = data[start : start + length]
    body = _BODY.pack(length, seq, created, items)
    if zlib.crc32(payload, zlib.crc32(body)) != crc:
        return None
    return Frame(seq, created, items, payload)


def journal_number(path: Path) -> int:
    try:
        return int(path.stem.split("-", 1)[1])
    except (IndexError, ValueError):
        return -1


def list_journals(directory: Path) -> list[Path]:
    paths = [p for p in directory.glob(JOURNAL_GLOB) if journal_number(p) >= 0]
    return sorted(paths, key=journal_number)


def journal_path(directory: Path, number: int) -> Path:
    return directory / f"journal-{number:08d}.log"


def write_all(fd: int, data: bytes | memoryview) -> None:
    """``write(2)`` until all of ``data`` is in the kernel (short writes happen on
    signals and nearly full disks)."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def fsync_dir(directory: Path) -> None:
    """Make a created or deleted file name durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
