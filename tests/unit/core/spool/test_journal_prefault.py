"""The spool's writer faults in journal pages ahead of the appends, so the
caller's copy into the mapped journal does not take the page faults."""

from __future__ import annotations

import mmap
import resource
from pathlib import Path

import pytest

from modelmon.spool import journal

PAGES = 512


def faults_writing(jrn: journal.MappedJournal, pages: int) -> int:
    before = resource.getrusage(resource.RUSAGE_THREAD).ru_minflt
    frame = b"x" * mmap.PAGESIZE
    for _ in range(pages):
        jrn.put(frame)
    return resource.getrusage(resource.RUSAGE_THREAD).ru_minflt - before


def test_prefaulted_pages_take_no_fault_on_append(tmp_path: Path) -> None:
    size = PAGES * mmap.PAGESIZE
    cold = journal.MappedJournal(tmp_path / "cold.log", size)
    warm = journal.MappedJournal(tmp_path / "warm.log", size)
    try:
        if warm._address is None:
            pytest.skip("no MADV_POPULATE_WRITE (needs Linux 5.14+)")
        warm.prefault(size)
        assert warm._populated == size
        assert faults_writing(cold, PAGES) >= PAGES // 2  # what the caller would pay
        assert faults_writing(warm, PAGES) <= PAGES // 20
        # The content is what was written: prefaulting does not write.
        with open(warm.path, "rb") as f:
            assert f.read(mmap.PAGESIZE) == b"x" * mmap.PAGESIZE
    finally:
        cold.close()
        warm.close()


def test_prefault_after_seal_is_harmless(tmp_path: Path) -> None:
    jrn = journal.MappedJournal(tmp_path / "j.log", 64 * mmap.PAGESIZE)
    jrn.put(b"frame")
    jrn.seal()  # unmapped: madvise fails, and prefaulting stops for this journal
    jrn.prefault(64 * mmap.PAGESIZE)
    jrn.prefault(64 * mmap.PAGESIZE)
    jrn.close()
    assert (tmp_path / "j.log").read_bytes()[:5] == b"frame"


def _journal_rss_kib(path: Path) -> int:
    """Resident KiB of this process's mappings of the spool's journal files."""
    total, inside = 0, False
    with open("/proc/self/smaps") as smaps:
        for line in smaps:
            head = line.split()
            if "-" in head[0] and len(head) >= 5 and ":" in head[3]:
                inside = len(head) > 5 and head[5].startswith(str(path))
            elif inside and line.startswith("Rss:"):
                total += int(head[1])
    return total


def test_a_slow_spool_faults_in_little_of_its_journal(tmp_path: Path) -> None:
    """An edge agent appends a few KiB a second: its journal pages in the RSS stay
    near the minimum look-ahead, not the MiBs a busy log shipper needs."""
    import time

    from modelmon.spool import Spool

    spool = Spool(tmp_path / "spool", max_bytes=64 << 20, max_age=None)
    try:
        for _ in range(10):
            spool.append(b"s" * 300)
            time.sleep(0.05)
        time.sleep(0.3)  # the writer ran several times
        assert _journal_rss_kib(tmp_path / "spool") <= 256
    finally:
        spool.close()


def test_the_look_ahead_follows_the_append_rate() -> None:
    from modelmon.spool.writer import _PREFAULT_MAX_BYTES, _PREFAULT_MIN_BYTES, _AppendRate

    class Journal:
        used = 0

    jrn, rate = Journal(), _AppendRate()
    assert rate.prefault_bytes(jrn, 0.0) == _PREFAULT_MIN_BYTES  # type: ignore[arg-type]
    jrn.used = 1 << 20  # 1 MiB in 0.5 s: 2 MiB/s, a second ahead
    assert rate.prefault_bytes(jrn, 0.5) == 2 << 20  # type: ignore[arg-type]
    jrn.used += 100 << 20  # a burst far past the cap
    assert rate.prefault_bytes(jrn, 1.0) == _PREFAULT_MAX_BYTES  # type: ignore[arg-type]
    for t in range(2, 30):  # idle again: the look-ahead halves back to the floor
        rate.prefault_bytes(jrn, float(t))  # type: ignore[arg-type]
    assert rate.prefault_bytes(jrn, 31.0) == _PREFAULT_MIN_BYTES  # type: ignore[arg-type]
