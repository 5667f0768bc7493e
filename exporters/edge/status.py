"""``modelmon edge status``: what the agent reports in ``status.json``, for humans.

The agent owns its spool (one process per spool directory), so the status
command never opens it while the agent runs: it reads the ``status.json`` the
agent refreshes every half second.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, TextIO

STALE_AFTER = 5.0  # seconds without a refresh before the agent counts as not running


def read_status(path: Path, attempts: int = 3) -> dict[str, Any] | None:
    """The agent's last status; read again when caught half-written (on a full
    disk the agent rewrites the file in place)."""
    for attempt in range(attempts):
        try:
            return dict(json.loads(path.read_text()))
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            if attempt + 1 < attempts:
                time.sleep(0.05)
    return None


def agent_running(status: dict[str, Any], now: float | None = None) -> bool:
    now = time.time() if now is None else now
    if not status.get("running") or now - float(status.get("updated", 0)) > STALE_AFTER:
        return False
    try:
        os.kill(int(status["pid"]), 0)
    except (OSError, KeyError, ValueError):
        return False
    return True


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


def human_duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = max(0.0, seconds)
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    if seconds < 172800:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds / 86400:.1f}d"


def render(status: dict[str, Any], now: float | None = None) -> str:
    now = time.time() if now is None else now
    running = agent_running(status, now)
    backlog = status.get("backlog", {})
    spool = status.get("spool", {})
    link = status.get("link_up")
    last_success = status.get("last_success")
    oldest = backlog.get("oldest_created")
    dropped = spool.get("dropped_samples") or {}
    since = status.get("since_start", {})
    lines = [
        f"device:        {status.get('device_id')}",
        "agent:         " + ("running (pid {})".format(status.get("pid")) if running else
                             f"not running (last status {human_duration(now - float(status.get('updated', now)))} ago)"),
        f"receiver:      {status.get('url')} (order {status.get('order')})",
        "link:          " + ("up" if link else "unknown" if link is None else "DOWN")
        + (f" - last error: {status['last_error']}" if link is False and status.get("last_error") else ""),
        "last send:     " + (f"{human_duration(now - last_success)} ago" if last_success else "never (since start)"),
        f"backlog:       {backlog.get('samples', 0):,} samples in {backlog.get('records', 0):,} records, "
        f"{human_bytes(backlog.get('bytes', 0))}, oldest {human_duration(now - oldest) if oldest else '-'}",
        f"spool disk:    {human_bytes(spool.get('disk_bytes', 0))} of {human_bytes(spool.get('max_bytes', 0))}"
        f" (max age {human_duration(spool.get('max_age'))})",
        f"sent:          {since.get('sent_samples', 0):,} samples since the agent started",
        "dropped:       " + _counts(dropped) + " (samples, over the spool's life)",
    ]
    degraded = status.get("degraded")
    if degraded:
        degraded_since = status.get("degraded_since")
        lines.insert(2, f"DEGRADED:      {degraded}"
                     + (f" (for {human_duration(now - float(degraded_since))})"
                        if degraded_since else "")
                     + "; nothing acknowledged is lost, delivery waits for storage")
    errors = status.get("storage_errors") or {}
    if errors:
        lines.append("storage errors: " + _counts(errors) + " (since the agent started)")
    lines += _bundle_lines(status.get("bundle"), now)
    lines += _alerting_lines(status.get("alerting"), now)
    return "\n".join(lines) + "\n"


def _alerting_lines(alerting: dict[str, Any] | None, now: float) -> list[str]:
    """Where the device's alerts go and what waits (edge.alerting)."""
    if not alerting:
        return []
    last = alerting.get("last_success")
    lines = [f"alertmanager:  {', '.join(alerting.get('alertmanagers') or [])}",
             f"alerts:        {alerting.get('pending_notifications', 0):,} notifications "
             f"waiting, {alerting.get('delivered_notifications', 0):,} delivered, last "
             + (f"{human_duration(now - last)} ago" if last else "never (since start)")
             + (f" - last error: {alerting['last_error']}" if alerting.get("last_error")
                and alerting.get("pending_notifications") else "")]
    dropped = alerting.get("dropped_notifications") or {}
    if dropped:
        lines.append("alerts dropped: " + _counts(dropped))
    return lines


def _bundle_lines(bundle: dict[str, Any] | None, now: float) -> list[str]:
    """What configuration bundle runs, and why a newer one does not (if so)."""
    if not bundle:
        return []
    if bundle.get("version") is None:
        lines = ["bundle:        none applied yet"]
    else:
        applied = bundle.get("applied_at")
        lines = [f"bundle:        {bundle['version']} ({str(bundle.get('sha256'))[:12]}) from "
                 f"{bundle.get('source')}"
                 + (f", applied {human_duration(now - applied)} ago" if applied else "")]
        carries = [what for what, present in (
            ("thresholds", bundle.get("thresholds")),
            (f"profiles of {', '.join(bundle.get('profiles') or [])}", bundle.get("profiles")),
            (f"collectors {', '.join(bundle.get('collectors') or []) or 'none'}",
             bundle.get("collectors") is not None)) if present]
        if carries:
            lines.append(f"bundle has:    {'; '.join(carries)}")
    if bundle.get("url"):
        confirmed = bundle.get("last_success")
        lines.append("bundle check:  " + (f"{human_duration(now - confirmed)} ago" if confirmed
                                          else "not confirmed since start")
                     + (f" - last error: {bundle['last_error']}" if bundle.get("last_error")
                        else ""))
    refusal = bundle.get("last_refusal")
    if refusal:
        lines.append(f"REFUSED:       {human_duration(now - float(refusal.get('at', now)))} ago, "
                     f"from {refusal.get('source')} ({refusal.get('reason')}): "
                     f"{refusal.get('message')}")
    return lines


def _counts(by_reason: dict[str, int]) -> str:
    return ", ".join(f"{k}={v:,}" for k, v in sorted(by_reason.items())) or "none"


def progress_bar(done: int, total: int, width: int = 30) -> str:
    fraction = 1.0 if total <= 0 else min(1.0, max(0.0, done / total))
    filled = int(round(fraction * width))
    return f"[{'#' * filled}{'.' * (width - filled)}] {fraction * 100:5.1f}%"


def follow_drain(path: Path, out: TextIO, timeout: float | None = None, poll: float = 0.5,
                 done_below: int = 0) -> bool:
    """Redraw a progress bar until the backlog drains to ``done_below`` samples.

    Returns True when drained, False on timeout or when the agent stopped.
    """
    start = time.monotonic()
    first = read_status(path) or {}
    base_sent = int(first.get("since_start", {}).get("sent_samples", 0))
    started_pid = first.get("pid")
    tty = out.isatty()
    last_sent, last_t, rate = base_sent, time.monotonic(), 0.0
    while True:
        status = read_status(path) or {}
        pending = int(status.get("backlog", {}).get("samples", 0))
        sent = int(status.get("since_start", {}).get("sent_samples", 0))
        if status.get("pid") != started_pid:  # agent restarted: restart the count
            base_sent, started_pid, last_sent = sent, status.get("pid"), sent
        done = sent - base_sent
        t = time.monotonic()
        if t - last_t >= 1.0:
            rate = 0.8 * rate + 0.2 * ((sent - last_sent) / (t - last_t)) if rate else (sent - last_sent) / (t - last_t)
            last_sent, last_t = sent, t
        eta = f", ETA {human_duration(pending / rate)}" if rate > 0 and pending else ""
        line = (f"{progress_bar(done, done + pending)} {done:,} sent, {pending:,} pending, "
                f"{rate:,.0f} samples/s{eta}")
        out.write(("\r" + line + "\033[K") if tty else line + "\n")
        out.flush()
        if pending <= done_below:
            out.write("\nbacklog drained\n" if tty else "backlog drained\n")
            return True
        if not agent_running(status):
            out.write("\nagent is not running; the backlog waits for its next start\n")
            return False
        if timeout is not None and time.monotonic() - start > timeout:
            out.write("\n")
            return False
        time.sleep(poll)
