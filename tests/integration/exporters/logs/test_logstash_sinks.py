"""Logstash: tcp json_lines (one JSON event per line) and the http input."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def test_tcp_json_lines_delivers_every_event_with_its_id(logstash_tcp: Any,
                                                         make_shipper: Any) -> None:
    shipper = make_shipper(sink="logstash_tcp", host="127.0.0.1", port=logstash_tcp.port)
    for n in range(300):
        shipper.emit({"message": "to logstash", "n": n})
    assert shipper.flush(10)
    deadline = time.monotonic() + 5
    while len(logstash_tcp.events) < 300 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert sorted(e["n"] for e in logstash_tcp.events) == list(range(300))
    assert logstash_tcp.bad_lines == 0
    ids = {e["event"]["id"] for e in logstash_tcp.events}
    assert len(ids) == 300  # document_id => "%{[event][id]}" deduplicates downstream


def test_tcp_events_wait_in_the_spool_until_logstash_listens(make_shipper: Any) -> None:
    from modelmon.demo.processes import free_port
    from support.es_servers import JsonLinesServer

    port = free_port()
    shipper = make_shipper(sink="logstash_tcp", host="127.0.0.1", port=port)
    for n in range(20):
        shipper.emit({"message": "while down", "n": n})
    assert not shipper.flush(0.3)
    assert shipper.spool.stats().pending == 20
    server = JsonLinesServer(port).start()
    try:
        assert shipper.flush(10)
        deadline = time.monotonic() + 5
        while len(server.events) < 20 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert sorted(e["n"] for e in server.events) == list(range(20))
    finally:
        server.stop()


class _HttpInput:
    """A Logstash http input: a JSON array body is one event per element."""

    def __init__(self) -> None:
        self.events: list[Any] = []
        self.script: list[tuple[int, dict[str, str]]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                status, headers = outer.script.pop(0) if outer.script else (200, {})
                if status == 200:
                    data = json.loads(body)
                    outer.events.extend(data if isinstance(data, list) else [data])
                text = b"ok" if status == 200 else b"busy"
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(text)))
                self.end_headers()
                self.wfile.write(text)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


def test_http_input_delivers_and_retries_429(make_shipper: Any) -> None:
    server = _HttpInput()
    server.script = [(429, {"Retry-After": "0"}), (503, {})]
    try:
        shipper = make_shipper(sink="logstash_http", url=server.url)
        for n in range(50):
            shipper.emit({"message": "over http", "n": n})
        assert shipper.flush(10)
        assert sorted(e["n"] for e in server.events) == list(range(50))
        assert shipper.spool.stats().delivered == 50
    finally:
        server.httpd.shutdown()
        server.httpd.server_close()
