"""A real Alertmanager (Debian's ``prometheus-alertmanager``) on a loopback port,
that can be stopped and started again on the same port and storage (an outage),
and a webhook receiver that keeps every notification it gets."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import requests
import yaml

from modelmon.demo.processes import find_binary, free_port, stop_process, wait_http_ok


class Webhook:
    """Alertmanager's webhook receiver: every notification body, in order."""

    def __init__(self) -> None:
        self.notifications: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with owner.lock:
                    owner.notifications.append(json.loads(body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def alerts(self, alertname: str) -> list[dict[str, Any]]:
        """Every alert named ``alertname`` in every notification, in order."""
        with self.lock:
            return [a for n in self.notifications for a in n["alerts"]
                    if a["labels"].get("alertname") == alertname]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class Alertmanager:
    workdir: Path
    webhook_url: str
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    runs: int = 0
    # Alertmanager's --web.config.file (exporter-toolkit: tls_server_config,
    # basic_auth_users); with it, ``session`` must be able to reach the server.
    web_config: dict[str, Any] | None = None
    session: requests.Session = field(default_factory=requests.Session)
    scheme: str = "http"

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def write_config(self) -> Path:
        config = {
            "route": {"receiver": "hook", "group_by": ["device"], "group_wait": "1s",
                      "group_interval": "1s", "repeat_interval": "1h"},
            "receivers": [{"name": "hook", "webhook_configs": [
                {"url": self.webhook_url, "send_resolved": True}]}],
        }
        path = self.workdir / "alertmanager.yml"
        path.write_text(yaml.safe_dump(config))
        return path

    def start(self) -> None:
        binary = find_binary("prometheus-alertmanager") or find_binary("alertmanager")
        if binary is None:
            raise FileNotFoundError("Alertmanager missing: apt-get install prometheus-alertmanager")
        self.workdir.mkdir(parents=True, exist_ok=True)
        config = self.write_config()
        args = [binary, f"--config.file={config}", f"--storage.path={self.workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--cluster.listen-address="]  # no gossip port: one loopback instance
        if self.web_config is not None:
            web = self.workdir / "web.yml"
            web.write_text(yaml.safe_dump(self.web_config))
            args.append(f"--web.config.file={web}")
        self.runs += 1
        with open(self.workdir / f"alertmanager-{self.runs}.log", "wb") as log:
            self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        if self.web_config is None:
            wait_http_ok(self.url + "/-/ready", 30, self.proc)
            return
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"alertmanager exited with {self.proc.returncode}")
            try:
                if self.session.get(self.url + "/-/ready", timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"{self.url} not ready after 30s")

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)

    def alerts(self) -> list[dict[str, Any]]:
        """``GET /api/v2/alerts``: the alerts it holds that have not ended."""
        r = self.session.get(self.url + "/api/v2/alerts", timeout=5)
        r.raise_for_status()
        return list(r.json())
