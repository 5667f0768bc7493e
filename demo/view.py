"""The demo's terminal view: a live screen with rich, or plain lines.

On a terminal: per model requests/s by outcome, p95 latency, error ratio,
fleet drift and accuracy; per device link state, backlog and last backfill;
the alerts as Alertmanager notifies them; the URLs to open. When stdout is not
a terminal (CI, a pipe): one line per notification and per schedule change,
and a short status line every ``status_every`` seconds.
"""

from __future__ import annotations

import collections
import sys
import threading
import time
from pathlib import Path
from typing import Any, Protocol, TextIO

from modelmon.demo.snapshot import RATE_WINDOW, Snapshot


class View(Protocol):
    def note(self, text: str) -> None: ...
    def schedule(self, labels: tuple[str, ...]) -> None: ...
    def update(self, snap: Snapshot) -> None: ...


def _num(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


class PlainView:
    def __init__(self, urls: list[tuple[str, str]], out: TextIO = sys.stdout,
                 status_every: float = 15.0) -> None:
        self.out = out
        self.urls = urls
        self.status_every = status_every
        self._last_status = 0.0
        self._lock = threading.Lock()
        # kept for a screenshot of the live view (save_screenshot)
        self.events: collections.deque[str] = collections.deque(maxlen=12)
        self.now: tuple[str, ...] = ()
        self.snap: Snapshot | None = None

    def __enter__(self) -> PlainView:
        for name, url in self.urls:
            self.line(f"{name:48} {url}")
        self.line("traffic is flowing; alerts and schedule changes follow. Ctrl-C stops.")
        return self

    def __exit__(self, *exc: Any) -> None:
        pass

    def line(self, text: str) -> None:
        with self._lock:
            print(f"{time.strftime('%H:%M:%S')} {text}", file=self.out, flush=True)

    def note(self, text: str) -> None:
        self.events.append(f"{time.strftime('%H:%M:%S')} {text}")
        self.line(text)

    def schedule(self, labels: tuple[str, ...]) -> None:
        self.now = labels
        self.line("now: " + (", ".join(labels) or "normal traffic"))

    def update(self, snap: Snapshot) -> None:
        self.snap = snap
        if time.monotonic() - self._last_status < self.status_every:
            return
        self._last_status = time.monotonic()
        for m in snap.models:
            self.line(
                f"model {m.model}: {sum(m.rps.values()):.1f} req/s, p95 {_num(m.p95, '.3f')}s, "
                f"errors {_num(m.error_ratio, '.1%')}, drift {_num(m.drift, '.3f')}, "
                f"accuracy {_num(m.accuracy, '.1%')}")
        for d in snap.devices:
            self.line(f"device {d.device}: link {'up' if d.link_up else 'DOWN'}, "
                      f"backlog {d.backlog} samples, last backfill {d.last_backfill}, "
                      f"bundle {d.bundle}")


class LiveView:
    """rich's Live display, redrawn on every update."""

    def __init__(self, urls: list[tuple[str, str]], title: str, console: Any = None) -> None:
        from rich.console import Console

        self.console = console or Console()
        self.urls = urls
        self.title = title
        self.events: collections.deque[str] = collections.deque(maxlen=12)
        self.now: tuple[str, ...] = ()
        self.snap: Snapshot | None = None
        self._live: Any = None

    def __enter__(self) -> LiveView:
        from rich.live import Live

        self._live = Live(self._render(), console=self.console, refresh_per_second=2,
                          screen=False)
        self._live.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._live is not None:
            self._live.__exit__(*exc)

    def _refresh(self) -> None:
        if self._live is not None:
            self._live.update(self._render())

    def note(self, text: str) -> None:
        self.events.append(f"{time.strftime('%H:%M:%S')} {text}")
        self._refresh()

    def line(self, text: str) -> None:
        self.note(text)

    def schedule(self, labels: tuple[str, ...]) -> None:
        self.now = labels
        self._refresh()

    def update(self, snap: Snapshot) -> None:
        self.snap = snap
        self._refresh()

    def _render(self) -> Any:
        from rich.console import Group
        from rich.panel import Panel
        from rich.table import Table
        from rich.text import Text

        models = Table(title=f"Models (rates over {RATE_WINDOW})", expand=True)
        for col in ("model", "req/s ok", "req/s error", "req/s rejected", "p95 s", "error ratio",
                    "fleet drift (PSI)", "accuracy"):
            models.add_column(col, justify="left" if col == "model" else "right")
        devices = Table(title="Edge devices", expand=True)
        for col in ("device", "link", "agent sees", "backlog (samples)", "last backfill",
                    "config bundle"):
            devices.add_column(col)
        if self.snap is not None:
            for m in self.snap.models:
                err = m.error_ratio or 0.0
                models.add_row(
                    m.model, _num(m.rps.get("success"), ".1f"), _num(m.rps.get("error"), ".1f"),
                    _num(m.rps.get("rejected"), ".1f"), _num(m.p95, ".3f"),
                    Text(_num(m.error_ratio, ".1%"), style="red" if err > 0.05 else ""),
                    Text(_num(m.drift, ".3f"),
                         style="red" if (m.drift or 0) > 0.25 else ""),
                    Text(_num(m.accuracy, ".1%"),
                         style="red" if m.accuracy is not None and m.accuracy < 0.8 else ""))
            for d in self.snap.devices:
                devices.add_row(
                    d.device, Text("up", style="green") if d.link_up else Text("DOWN", style="red"),
                    "-" if d.agent_link_up is None else ("up" if d.agent_link_up else "down"),
                    str(d.backlog), d.last_backfill, d.bundle)
        alerts = Text("\n".join(self.events) or "(none yet)")
        urls = Table.grid(padding=(0, 2))
        for name, url in self.urls:
            urls.add_row(name, url)
        now = ", ".join(self.now) or "normal traffic"
        return Panel(Group(
            Text(f"now: {now}", style="bold"), models, devices,
            Panel(alerts, title="Alerts (Alertmanager -> webhook) and events"),
            Panel(urls, title="Open")), title=self.title, subtitle="Ctrl-C stops")


def save_screenshot(view: PlainView | LiveView, urls: list[tuple[str, str]], title: str,
                    path: str | Path) -> None:
    """The live view as it last looked, as an SVG (rich's export): the README's picture."""
    import io

    from rich.console import Console

    console = Console(record=True, width=150, file=io.StringIO(), force_terminal=True)
    shot = LiveView(urls, title, console=console)
    shot.events, shot.now, shot.snap = collections.deque(view.events), view.now, view.snap
    console.print(shot._render())
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    console.save_svg(str(path), title="modelmon demo")


def make_view(urls: list[tuple[str, str]], title: str, plain: bool) -> PlainView | LiveView:
    if plain or not sys.stdout.isatty():
        return PlainView(urls)
    return LiveView(urls, title)
