"""A loopback remote_write receiver whose answers a test scripts.

It implements the wire contract (snappy block body, protobuf WriteRequest)
and stores what it accepts; the integration tests use a real Prometheus.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import cramjam

from modelmon.exporters.edge.prompb import decode_write_request


@dataclass
class Receiver:
    url: str
    # Scripted answers, used in order; when empty, every request is accepted (204).
    answers: list[tuple[int, str, dict[str, str]]] = field(default_factory=list)
    accepted: list[tuple[tuple[tuple[str, str], ...], float, int]] = field(default_factory=list)
    requests: list[dict[str, object]] = field(default_factory=list)
    # A function (series) -> (status, message) | None deciding per request, after answers.
    judge: object = None
    # A function (method, path, headers, raw body) -> (status, message) | None run
    # first, like a receiver's authentication (e.g. support.sigv4_verifier).
    gate: object = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def samples(self, name: str) -> list[tuple[float, int]]:
        with self.lock:
            return [(v, t) for labels, v, t in self.accepted if dict(labels)["__name__"] == name]


class _Handler(BaseHTTPRequestHandler):
    receiver: Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        r = self.receiver
        refusal = r.gate("POST", self.path, dict(self.headers), body) if callable(r.gate) else None
        if refusal is not None:
            with r.lock:
                r.requests.append({"headers": dict(self.headers), "series": [],
                                   "refused": refusal[0]})
            self.send_response(refusal[0])
            self.send_header("Content-Length", str(len(refusal[1].encode())))
            self.end_headers()
            self.wfile.write(refusal[1].encode())
            return
        series = decode_write_request(bytes(cramjam.snappy.decompress_raw(body)))
        with r.lock:
            r.requests.append({"headers": dict(self.headers), "series": series})
            if r.answers:
                status, message, headers = r.answers.pop(0)
            elif callable(r.judge):
                status, message, headers = r.judge(series) or (204, "", {})
            else:
                status, message, headers = 204, "", {}
            if status < 300:
                r.accepted.extend((labels, v, t) for labels, samples in series for v, t in samples)
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        payload = message.encode()
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: object) -> None:
        pass


def serve(tls: object = None) -> tuple[Receiver, ThreadingHTTPServer, list[str]]:
    """A started receiver; with ``tls`` (a ``support.tls_certs.Pki``) over TLS
    requiring a client certificate. Returns the receiver, its server (for
    ``shutdown``) and the refused handshakes."""
    handler = type("Handler", (_Handler,), {})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    refused: list[str] = []
    scheme = "http"
    if tls is not None:
        from support.tls_certs import require_client_cert

        refused = require_client_cert(server, tls)  # type: ignore[arg-type]
        scheme = "https"
    rec = Receiver(f"{scheme}://127.0.0.1:{server.server_port}/api/v1/write")
    handler.receiver = rec
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    return rec, server, refused
