"""A loopback OAuth 2.0 token endpoint (client credentials grant, RFC 6749 4.4)
whose tokens expire after ``lifetime`` seconds, and can be revoked mid-run;
``check`` tells a resource server whether a bearer token is valid now."""

from __future__ import annotations

import base64
import json
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class TokenEndpoint:
    url: str
    client_id: str
    client_secret: str
    lifetime: float = 3600.0
    scopes: set[str] = field(default_factory=set)  # scopes a client may ask for
    issued: dict[str, float] = field(default_factory=dict)  # token -> expiry (monotonic)
    requests: list[dict[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def check(self, authorization: str | None) -> bool:
        """True when ``authorization`` is ``Bearer <a token issued and not expired>``."""
        kind, _, token = (authorization or "").partition(" ")
        with self.lock:
            expiry = self.issued.get(token)
        return kind == "Bearer" and expiry is not None and time.monotonic() < expiry

    def revoke_all(self) -> None:
        with self.lock:
            self.issued.clear()


class _Handler(BaseHTTPRequestHandler):
    endpoint: TokenEndpoint

    def do_POST(self) -> None:
        ep = self.endpoint
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
        form = dict(urllib.parse.parse_qsl(body))
        with ep.lock:
            ep.requests.append(form)
        kind, _, encoded = (self.headers.get("Authorization") or "").partition(" ")
        try:
            user, _, password = base64.b64decode(encoded).decode().partition(":")
        except ValueError:
            user = password = ""
        client = (urllib.parse.unquote(user), urllib.parse.unquote(password))
        if kind != "Basic" or client != (ep.client_id, ep.client_secret):
            return self._answer(401, {"error": "invalid_client"})
        if form.get("grant_type") != "client_credentials":
            return self._answer(400, {"error": "unsupported_grant_type"})
        asked = set(form.get("scope", "").split())
        if not asked <= ep.scopes:
            return self._answer(400, {"error": "invalid_scope"})
        with ep.lock:
            token = f"tok-{len(ep.issued) + len(ep.requests)}-{time.monotonic_ns()}"
            ep.issued[token] = time.monotonic() + ep.lifetime
        self._answer(200, {"access_token": token, "token_type": "bearer",
                           "expires_in": ep.lifetime})

    def _answer(self, status: int, doc: dict[str, object]) -> None:
        payload = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Cache-Control", "no-store")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: object) -> None:
        pass


def serve_token_endpoint(client_id: str, client_secret: str, lifetime: float,
                         scopes: set[str] | None = None
                         ) -> tuple[TokenEndpoint, ThreadingHTTPServer]:
    handler = type("Handler", (_Handler,), {})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    endpoint = TokenEndpoint(f"http://127.0.0.1:{server.server_port}/oauth2/token", client_id,
                             client_secret, lifetime, scopes or set())
    handler.endpoint = endpoint
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    return endpoint, server
