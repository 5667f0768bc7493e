"""LogShipper takes the spool's and the worker's settings grouped
(``spool=SpoolSettings(...)``, ``delivery=DeliverySettings(...)``) or one by
one as the keyword arguments users and ``from_config`` pass; both at once: the
keyword wins."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from modelmon.exporters.logs import LogShipper
from modelmon.exporters.logs.slots import MAX_SLOTS, open_slot
from modelmon.spool import SpoolLocked, SpoolSettings
from modelmon.spool.delivery import DeliverySettings


def test_grouped_settings_and_keywords_both_reach_the_spool_and_the_worker(tmp_path: Path) -> None:
    shipper = LogShipper(
        "file", path=tmp_path / "events.jsonl", spool_dir=tmp_path / "spool",
        registry=CollectorRegistry(), plugin_processors=False,
        spool=SpoolSettings(max_bytes=1 << 20, fsync="never"),
        delivery=DeliverySettings(batch_records=7, backoff_base=0.2),
        max_age=60.0, backoff_max=2.0,
    )
    try:
        assert (shipper.spool.max_bytes, shipper.spool.fsync, shipper.spool.max_age) == (
            1 << 20, "never", 60.0)
        d = shipper.delivery_settings
        assert (d.batch_records, d.backoff_base, d.backoff_cap) == (7, 0.2, 2.0)
        assert shipper.emit({"message": "grouped"}) is not None
        assert shipper.flush(10)
    finally:
        shipper.close()
    assert "grouped" in (tmp_path / "events.jsonl").read_text()


def test_the_keyword_arguments_alone_keep_their_defaults_and_meaning(tmp_path: Path) -> None:
    shipper = LogShipper("file", path=tmp_path / "e.jsonl", spool_dir=tmp_path / "spool",
                         registry=CollectorRegistry(), plugin_processors=False,
                         batch_size=50, batch_bytes=1000, backoff_initial=0.1, fsync="always")
    try:
        d = shipper.delivery_settings
        assert (d.batch_records, d.batch_bytes, d.backoff_base, d.backoff_cap) == (
            50, 1000, 0.1, 60.0)
        assert shipper.spool_settings == SpoolSettings(fsync="always")
    finally:
        shipper.close()


def test_a_bad_batch_size_names_the_argument(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="batch_size"):
        LogShipper("file", spool_dir=tmp_path, registry=CollectorRegistry(), batch_size=0)


def test_slots_are_taken_in_order_and_the_root_is_owner_only(tmp_path: Path) -> None:
    root = tmp_path / "spool"
    settings = SpoolSettings(max_bytes=1 << 20, max_age=None)
    first, second = open_slot(root, settings), open_slot(root, settings)
    try:
        assert (first.path.name, second.path.name) == ("slot-0", "slot-1")
        assert stat.S_IMODE(root.stat().st_mode) == 0o700
    finally:
        first.close()
        second.close()
    held = [open_slot(root, settings) for _ in range(MAX_SLOTS)]
    try:
        with pytest.raises(SpoolLocked, match="spool_dir"):
            open_slot(root, settings)
    finally:
        for spool in held:
            spool.close()
