"""Headless Chromium (Debian ``chromium``) driven over the DevTools protocol.

``open_page(url)`` loads a page in a fresh browser profile and returns what a
test needs to judge it: console errors and uncaught exceptions, every network
request the page made, JavaScript evaluation, and a PNG screenshot.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import struct
import subprocess
import tempfile
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
import websocket

from modelmon.demo.processes import find_binary

FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-extensions", "--hide-scrollbars", "--remote-debugging-address=127.0.0.1",
    "--remote-debugging-port=0",
]


def chromium_binary() -> str:
    path = find_binary("chromium") or find_binary("chromium-browser")
    if path is None:  # fail, never skip: a skipped browser test proves nothing
        pytest.fail("chromium missing: apt-get install chromium (tests/run.sh installs it)")
    return path


@dataclass
class Page:
    """One loaded page and everything the browser reported while loading it."""

    _ws: websocket.WebSocket
    console_errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def call(self, method: str, timeout: float = 30.0, **params: Any) -> dict[str, Any]:
        """Send a DevTools command; events arriving meanwhile are recorded."""
        call_id = next(self._ids)
        self._ws.send(json.dumps({"id": call_id, "method": method, "params": params}))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            message = self._receive(deadline)
            if message is not None and message.get("id") == call_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                result: dict[str, Any] = message.get("result", {})
                return result
        raise TimeoutError(f"{method}: no answer within {timeout}s")

    def wait_event(self, method: str, timeout: float = 30.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            message = self._receive(deadline)
            if message is not None and message.get("method") == method:
                params: dict[str, Any] = message.get("params", {})
                return params
        raise TimeoutError(f"no {method} within {timeout}s")

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True,
                           awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression!r} threw: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_until(self, expression: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while not self.evaluate(expression):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{expression!r} still false after {timeout}s")
            time.sleep(0.1)

    def screenshot(self, scale: float = 1.0) -> bytes:
        """PNG of the viewport; ``scale`` < 1 makes it smaller (and quicker to judge)."""
        size = self.evaluate("[window.innerWidth, window.innerHeight]")
        clip = {"x": 0, "y": 0, "width": size[0], "height": size[1], "scale": scale}
        return base64.b64decode(self.call("Page.captureScreenshot", format="png",
                                          clip=clip)["data"])

    def _receive(self, deadline: float) -> dict[str, Any] | None:
        self._ws.settimeout(max(0.05, deadline - time.monotonic()))
        try:
            message: dict[str, Any] = json.loads(self._ws.recv())
        except websocket.WebSocketTimeoutException:
            return None
        method, params = message.get("method"), message.get("params", {})
        if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            args = " ".join(str(a.get("value", a.get("description", ""))) for a in params["args"])
            self.console_errors.append(f"console.{params['type']}: {args}")
        elif method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            text = details.get("exception", {}).get("description") or details.get("text")
            self.console_errors.append(f"uncaught: {text}")
        elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
            entry = params["entry"]
            self.console_errors.append(f"{entry.get('source')}: {entry.get('text')} "
                                       f"{entry.get('url', '')}".strip())
        elif method == "Network.requestWillBeSent":
            self.requests.append(params["request"]["url"])
        return message


@contextlib.contextmanager
def open_page(url: str, width: int = 1400, height: int = 1000,
              timeout: float = 60.0) -> Iterator[Page]:
    """Load ``url`` in a fresh headless Chromium and yield the page once loaded."""
    with tempfile.TemporaryDirectory(prefix="modelmon-chromium-") as profile:
        log = Path(profile) / "chromium.log"
        with open(log, "wb") as log_file:
            proc = subprocess.Popen(
                [chromium_binary(), *FLAGS, f"--user-data-dir={profile}/profile",
                 f"--window-size={width},{height}", "about:blank"],
                stdout=log_file, stderr=subprocess.STDOUT,
            )
        try:
            port = _devtools_port(Path(profile) / "profile", proc, log, timeout)
            target = next(t for t in requests.get(f"http://127.0.0.1:{port}/json/list",
                                                  timeout=10).json() if t["type"] == "page")
            ws = websocket.create_connection(target["webSocketDebuggerUrl"], timeout=timeout,
                                             suppress_origin=True)
            try:
                page = Page(ws)
                for domain in ("Page", "Runtime", "Log", "Network"):
                    page.call(f"{domain}.enable")
                # The viewport itself, not the window with the browser's own bars.
                page.call("Emulation.setDeviceMetricsOverride", width=width, height=height,
                          deviceScaleFactor=1, mobile=False)
                page.call("Page.navigate", url=url)
                page.wait_event("Page.loadEventFired", timeout)
                yield page
            finally:
                ws.close()
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _devtools_port(profile: Path, proc: subprocess.Popen[bytes], log: Path,
                   timeout: float) -> int:
    """Chromium writes the port it chose to DevToolsActivePort in its profile."""
    marker = profile / "DevToolsActivePort"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"chromium exited with {proc.returncode}: {log.read_text()[-2000:]}")
        if marker.exists():
            lines = marker.read_text().split()
            if lines:
                return int(lines[0])
        time.sleep(0.05)
    raise TimeoutError(f"chromium did not open its DevTools port in {timeout}s: "
                       f"{log.read_text()[-2000:]}")


def png_pixels(png: bytes) -> tuple[int, int, int, list[bytes]]:
    """(width, height, bytes per pixel, rows of RGB or RGBA bytes) of an 8-bit non-interlaced PNG, as
    Chromium writes screenshots; no imaging library needed to judge one."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, b"", b""
    while pos < len(png):
        (length,) = struct.unpack(">I", png[pos:pos + 4])
        kind, body = png[pos + 4:pos + 8], png[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    width, height, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", header)
    assert depth == 8 and color in (2, 6) and interlace == 0, (depth, color, interlace)
    bpp = 3 if color == 2 else 4
    raw, stride = zlib.decompress(idat), width * bpp
    rows: list[bytes] = []
    previous = bytearray(stride)
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b, c = previous[i], previous[i - bpp] if i >= bpp else 0
            if kind == 1:
                line[i] = (line[i] + a) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + b) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (a + b) // 2) & 0xFF
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
        rows.append(bytes(line))
        previous = line
    return width, height, bpp, rows
