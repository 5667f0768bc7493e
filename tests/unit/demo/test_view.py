"""The live view (rich) and the plain lines show the models, devices, alerts and URLs."""

from __future__ import annotations

import io

from rich.console import Console

from modelmon.demo.snapshot import DeviceRow, ModelRow, Snapshot
from modelmon.demo.view import LiveView, PlainView

URLS = [("Prometheus", "http://127.0.0.1:9090"), ("Alertmanager", "http://127.0.0.1:9093")]
SNAP = Snapshot(
    [ModelRow("fraud-detector", {"success": 12.5, "error": 3.0}, 0.123, 0.19, 0.91, 0.62)],
    [DeviceRow("edge-1", True, True, 0), DeviceRow("edge-2", False, False, 1594,
                                                   "12:00:01 2762 samples",
                                                   "demo-1 (refused one: signature)")],
)


def test_live_view_renders_every_part() -> None:
    out = io.StringIO()
    console = Console(file=out, width=160, force_terminal=True, color_system=None)
    view = LiveView(URLS, "modelmon demo", console=console)
    with view:
        view.schedule(("error burst 30%",))
        view.note("alert FIRING   ModelErrorBudgetBurningFast model=fraud-detector")
        view.update(SNAP)
    console.print(view._render())
    text = out.getvalue()
    for expected in ("fraud-detector", "12.5", "0.123", "19.0%", "0.910", "62.0%", "edge-2",
                     "DOWN", "1594", "2762 samples", "ModelErrorBudgetBurningFast",
                     "now: error burst 30%", "http://127.0.0.1:9093", "Ctrl-C stops",
                     "refused one: signature"):
        assert expected in text, expected


def test_plain_lines_when_not_a_terminal() -> None:
    out = io.StringIO()
    view = PlainView(URLS, out=out, status_every=0)
    with view:
        view.schedule(("edge-2 link down",))
        view.update(SNAP)
        view.note("alert RESOLVED EdgeDeviceOffline device=edge-2")
    lines = out.getvalue().splitlines()
    assert any("http://127.0.0.1:9090" in line for line in lines)
    assert any("now: edge-2 link down" in line for line in lines)
    assert any("model fraud-detector: 15.5 req/s, p95 0.123s, errors 19.0%" in line
               for line in lines)
    assert any("device edge-2: link DOWN, backlog 1594 samples" in line for line in lines)
    assert lines[-1].endswith("alert RESOLVED EdgeDeviceOffline device=edge-2")
    assert "\x1b[" not in out.getvalue()  # no terminal codes in a log


def test_screenshot_of_the_live_view(tmp_path) -> None:
    from modelmon.demo.view import save_screenshot

    view = PlainView(URLS, out=io.StringIO())
    view.schedule(("input drift",))
    view.update(SNAP)
    view.note("alert FIRING   ModelFeatureDrift feature=amount")
    save_screenshot(view, URLS, "modelmon demo", tmp_path / "live.svg")
    svg = (tmp_path / "live.svg").read_text()
    assert svg.startswith("<svg") and "ModelFeatureDrift" in svg and "fraud-detector" in svg
