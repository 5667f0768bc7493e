from __future__ import annotations

import io
import os
import time

from modelmon.exporters.edge.agent import write_json_atomic
from modelmon.exporters.edge.status import follow_drain, progress_bar, read_status, render


def _status(**overrides):
    now = time.time()
    status = {
        "device_id": "press-7", "pid": os.getpid(), "running": True, "updated": now,
        "url": "http://prom/api/v1/write", "order": "fifo", "link_up": False,
        "last_success": now - 3600, "last_error": "connection: refused",
        "backlog": {"samples": 180000, "records": 360, "bytes": 3 * 2**20, "oldest_created": now - 3600},
        "spool": {"disk_bytes": 4 * 2**20, "max_bytes": 512 * 2**20, "max_age": 604800.0,
                  "dropped_samples": {"max_age": 12}},
        "since_start": {"sent_samples": 0, "dropped_samples": {}},
    }
    status.update(overrides)
    return status


def test_render_shows_link_backlog_last_send_and_drops() -> None:
    text = render(_status())
    assert "DOWN - last error: connection: refused" in text
    assert "180,000 samples" in text and "oldest 60m" in text
    assert "last send:     60m ago" in text
    assert "max_age=12" in text


def test_progress_bar() -> None:
    assert progress_bar(0, 10, width=10) == "[..........]   0.0%"
    assert progress_bar(5, 10, width=10) == "[#####.....]  50.0%"
    assert progress_bar(0, 0, width=4) == "[####] 100.0%"


def test_follow_stops_when_drained(tmp_path) -> None:
    path = tmp_path / "status.json"
    write_json_atomic(path, _status(link_up=True))
    out = io.StringIO()
    # The "agent" drains between two polls.
    write_json_atomic(path, _status(link_up=True, backlog={"samples": 0},
                                    since_start={"sent_samples": 180000}))
    assert follow_drain(path, out, timeout=5, poll=0.01)
    assert "backlog drained" in out.getvalue()
    assert read_status(tmp_path / "missing.json") is None
