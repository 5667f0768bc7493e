"""An S3 endpoint for the archive sink's tests: moto's S3 server on loopback
(``ThreadedMotoServer``: the S3 REST API over HTTP, in this process), and a
proxy in front of it that injects faults *after* the store applied a request:
the answer replaced by a 500, the connection dropped, or the answer held (so
a test can kill the client while its upload is stored but unacknowledged)."""

from __future__ import annotations

import http.client
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from moto.server import ThreadedMotoServer

CREDENTIALS = {"access_key_id": "AKIAMODELMONTEST", "secret_access_key": "moto-secret",
               "region": "us-east-1"}


@contextmanager
def moto_s3() -> Iterator[str]:
    """The endpoint URL of a fresh moto S3 server on a free loopback port."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@dataclass
class FaultProxy:
    """Forwards to ``upstream``; ``faults`` (consumed in order, one per PUT of an
    object) says what the client gets once the store has applied the PUT:
    ``"ok"``, ``"500"``, ``"drop"`` (connection closed, no answer) or ``"hold"``
    (no answer until ``release`` is set)."""

    upstream: str
    url: str = ""
    faults: list[str] = field(default_factory=list)
    applied_puts: int = 0
    release: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    held: threading.Event = field(default_factory=threading.Event)


def _handler(proxy: FaultProxy) -> type[BaseHTTPRequestHandler]:
    host, port = proxy.upstream.removeprefix("http://").split(":")

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _forward(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            conn = http.client.HTTPConnection(host, int(port), timeout=30)
            headers = {k: v for k, v in self.headers.items() if k.lower() != "connection"}
            conn.request(self.command, self.path, body=body, headers=headers)
            resp = conn.getresponse()
            payload = resp.read()
            conn.close()
            fault = "ok"
            if self.command == "PUT" and "?" not in self.path and resp.status == 200:
                with proxy.lock:
                    proxy.applied_puts += 1
                    fault = proxy.faults.pop(0) if proxy.faults else "ok"
            if fault == "drop":
                self.connection.shutdown(socket.SHUT_RDWR)
                self.close_connection = True
                return
            if fault == "hold":
                proxy.held.set()
                proxy.release.wait(60)
                self.close_connection = True
                return
            if fault == "500":
                resp_status, payload = 500, (b"<Error><Code>InternalError</Code><Message>injected"
                                             b"</Message></Error>")
                send_headers = [("Content-Type", "application/xml")]
            else:
                resp_status = resp.status
                send_headers = [(k, v) for k, v in resp.getheaders()
                                if k.lower() not in ("content-length", "transfer-encoding",
                                                     "connection")]
            self.send_response(resp_status)
            for k, v in send_headers:
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)

        do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _forward

        def log_message(self, *args: object) -> None:
            pass

    return Handler


@contextmanager
def fault_proxy(upstream: str) -> Iterator[FaultProxy]:
    proxy = FaultProxy(upstream)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(proxy))
    server.daemon_threads = True
    proxy.url = f"http://127.0.0.1:{server.server_port}"
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        yield proxy
    finally:
        proxy.release.set()
        server.shutdown()
        server.server_close()
