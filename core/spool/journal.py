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

Two ways to append (``open_journal``):

``MappedJournal`` (fsync modes "interval" and "never")
    the file is preallocated (``posix_fallocate``: its blocks are reserved, so
    a full disk cannot fault a later copy) and mapped ``MAP_SHARED``; an append
    is a ``memcpy`` into the page cache. The bytes belong to the kernel as soon
    as they are copied, so they survive the death of the process exactly like
    a ``write(2)``, and ``fdatasync`` of the file makes them durable. Why: no
    system call and, above all, the GIL is not released, so the caller is not
    handed back the GIL only after a background thread's 5 ms switch interval
    (measured: about 5 us of caller CPU and 10 us of wall time per append under
    load). The unused end of the file is zeros; a zero tail is not a frame and
    not corruption.
``AppendJournal`` (fsync mode "always", and the fallback when a file cannot
    be preallocated or mapped): one ``write(2)`` on an ``O_APPEND`` descriptor;
    the file holds exactly the frames written.
"""

from __future__ import annotations

import logging
import mmap
import os
import re
import struct
import sys
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MAGIC = b"MMJ1"
HEADER = struct.Struct("<4sIQdII")
HEADER_SIZE = HEADER.size
BODY = struct.Struct("<IQdI")  # the header fields the CRC covers
# A frame longer than this is certainly a corrupt length field.
MAX_FRAME_PAYLOAD = 256 * 1024 * 1024
JOURNAL_GLOB = "journal-*.log"
_NON_ZERO = re.compile(rb"[^\x00]")

log = logging.getLogger(__name__)


def encode(seq: int, created: float, items: int, payload: bytes) -> bytes:
    body = BODY.pack(len(payload), seq, created, items)
    crc = zlib.crc32(payload, zlib.crc32(body))
    return HEADER.pack(MAGIC, len(payload), seq, created, items, crc) + payload


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
        if frame is None and data[pos] == 0 and _NON_ZERO.search(data, pos) is None:
            break  # the unused, zero-filled end of a preallocated journal
        if frame is None:
            if bad_start is None:
                bad_start = pos
            nxt = data.find(MAGIC, pos + 1)
            if nxt < 0:
                # The rest is unreadable up to the zero-filled, unused end of a
                # preallocated journal: that end is not part of the damage.
                pos = max(len(data[pos:].rstrip(b"\x00")) + pos, pos + 1)
                break
            pos = nxt
            continue
        if bad_start is not None:
            yield Corrupt(bad_start, pos - bad_start)
            bad_start = None
        yield frame
        pos += HEADER_SIZE + len(frame.payload)
    if bad_start is not None:
        yield Corrupt(bad_start, pos - bad_start)


def _frame_at(data: bytes, pos: int) -> Frame | None:
    if pos + HEADER_SIZE > len(data) or data[pos : pos + 4] != MAGIC:
        return None
    _, length, seq, created, items, crc = HEADER.unpack_from(data, pos)
    start = pos + HEADER_SIZE
    if length > MAX_FRAME_PAYLOAD or start + length > len(data):
        return None
    payload = data[start : start + length]
    body = BODY.pack(length, seq, created, items)
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


class AppendJournal:
    """Frames appended with ``write(2)`` to an ``O_APPEND`` file."""

    def __init__(self, path: Path, capacity: int) -> None:
        self.path = path
        self.capacity = capacity  # rotate past this many bytes (a bigger frame still fits)
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self.used = os.fstat(self.fd).st_size

    def put(self, data: bytes) -> None:
        try:
            written = os.write(self.fd, data)
            if written != len(data):  # short write (signal, nearly full disk): finish it
                write_all(self.fd, memoryview(data)[written:])
        except OSError:
            # Refused (a full disk): take back the part that was written, so the
            # next start does not read a torn frame and count the refused
            # records a second time, as corrupt. Shrinking needs no space.
            try:
                os.ftruncate(self.fd, self.used)
            except OSError:
                pass
            raise
        self.used += len(data)

    def seal(self) -> None:
        """No more appends (the file stays open for a last fdatasync)."""

    def close(self) -> None:
        os.close(self.fd)


class MappedJournal:
    """Frames copied into a preallocated file mapped ``MAP_SHARED`` (see module doc)."""

    def __init__(self, path: Path, capacity: int) -> None:
        self.path = path
        self.capacity = capacity
        self.used = 0
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.posix_fallocate(self.fd, 0, capacity)
            self._map = mmap.mmap(self.fd, capacity, mmap.MAP_SHARED,
                                  mmap.PROT_READ | mmap.PROT_WRITE)
        except BaseException:
            os.close(self.fd)
            path.unlink(missing_ok=True)
            raise
        self._address = _address_of(self._map)
        self._populated = 0

    def prefault(self, ahead: int) -> None:
        """Fault in the pages the next ``ahead`` bytes of appends will write, from
        the spool's writer thread: a first write to a page of a shared file
        mapping is a page fault (a few microseconds), and the caller's thread
        would take it with the GIL held. ``MADV_POPULATE_WRITE`` (Linux 5.14)
        does it without touching the contents; elsewhere this does nothing."""
        target = min(self.capacity, self.used + ahead)
        if self._address is None or target <= self._populated:
            return
        start = self._populated & ~(mmap.PAGESIZE - 1)
        # Through ctypes: the system call runs without the GIL. Called after a
        # seal the range is unmapped and madvise fails harmlessly (ENOMEM).
        if _madvise(self._address + start, target - start, _MADV_POPULATE_WRITE) == 0:
            self._populated = target
        else:
            self._address = None  # an older kernel: appends fault as before

    def put(self, data: bytes) -> None:
        start = self.used
        end = start + len(data)
        self._map[start:end] = data
        self.used = end

    def seal(self) -> None:
        """No more appends: unmap (its pages leave the RSS), keep the file open."""
        self._map.close()

    def close(self) -> None:
        self._map.close()  # idempotent
        os.close(self.fd)


class KeptJournal:
    """A journal an earlier process left whose records are not yet in SQLite
    (a full disk at start): deleted by the writer once they are."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def close(self) -> None:
        pass


Journal = AppendJournal | MappedJournal
_MADV_POPULATE_WRITE = 23  # linux/mman.h, Linux 5.14+


def _load_madvise() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.madvise
        fn.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
        fn.restype = ctypes.c_int
        return fn
    except (OSError, AttributeError):
        return None


_madvise = _load_madvise()


def _address_of(mapping: mmap.mmap) -> int | None:
    if _madvise is None:
        return None
    import ctypes

    anchor = ctypes.c_char.from_buffer(mapping)
    try:
        return ctypes.addressof(anchor)
    finally:
        del anchor  # an exported buffer would keep mmap.close() from unmapping


def open_journal(path: Path, capacity: int, mapped: bool) -> Journal:
    """A new journal file; mapped when asked and possible, else ``write(2)``."""
    if mapped:
        try:
            return MappedJournal(path, capacity)
        except (OSError, ValueError) as exc:
            log.warning("modelmon spool: cannot preallocate and map %s (%s); appending "
                        "with write(2) instead", path, exc)
    return AppendJournal(path, capacity)
