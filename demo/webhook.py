"""The demo's Alertmanager webhook receiver: keeps and reports each notification."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Notification:
    """One alert of one webhook call: Alertmanager's fields as sent."""

    receiver: str
    status: str  # firing or resolved
    labels: dict[str, str]
    starts_at: str
    ends_at: str
    summary: str = ""

    @property
    def alertname(self) -> str:
        return self.labels.get("alertname", "")

    def line(self) -> str:
        scope = " ".join(f"{k}={v}" for k, v in sorted(self.labels.items())
                         if k in ("model", "device", "feature", "severity"))
        return f"{self.status.upper():8} {self.alertname} {scope} (startsAt {self.starts_at})"


@dataclass
class WebhookReceiver:
    """POST /alerts/<receiver>: Alertmanager's webhook payload (version 4)."""

    port: int
    log_path: Path | None = None
    host: str = "127.0.0.1"
    on_notification: Callable[[Notification], None] | None = None
    notifications: list[Notification] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    owner._receive(self.path.rsplit("/", 1)[-1], json.loads(body))
                except (ValueError, KeyError, TypeError):
                    self.send_response(400)
                else:
                    self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer((self.host, self.port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        name="demo-webhook", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"http://{host}:{self._server.server_address[1]}"

    def _receive(self, receiver: str, payload: dict[str, Any]) -> None:
        got = [
            Notification(receiver, str(a["status"]), dict(a["labels"]), str(a["startsAt"]),
                         str(a.get("endsAt", "")),
                         str((a.get("annotations") or {}).get("summary", "")))
            for a in payload["alerts"]
        ]
        with self._lock:
            self.notifications.extend(got)
            if self.log_path is not None:
                with open(self.log_path, "a") as f:
                    for n in got:
                        f.write(json.dumps(n.__dict__) + "\n")
        for n in got:
            if self.on_notification is not None:
                self.on_notification(n)

    def received(self) -> list[Notification]:
        with self._lock:
            return list(self.notifications)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
