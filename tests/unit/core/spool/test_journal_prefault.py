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
