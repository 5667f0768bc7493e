"""The Elasticsearch and Logstash sinks over TLS to loopback servers that
REQUIRE a client certificate, and their secrets read from files.

With the client certificate the events are delivered; without it (or with one
the server's CA did not sign) the connection is refused, counted as a
retryable failure, and every event stays in the spool. Secrets reach the
server and nowhere else: not the logs (DEBUG included), not /metrics, not
the repr of the options.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from prometheus_client import generate_latest

from modelmon.config import ConfigError
from modelmon.exporters.logs.config import check_sink, shipper_options
from support.es_servers import EsTestServer, JsonLinesServer
from support.tls_certs import Pki, make_pki, require_client_cert

SECRET = "s3cr3t-Lg55-do-not-log"
N = 25


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


class _HttpInput:
    """A Logstash http input: a JSON array per POST; records each Authorization."""

    def __init__(self, pki: Pki | None = None) -> None:
        self.events: list[Any] = []
        self.authorization: list[str | None] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.authorization.append(self.headers.get("Authorization"))
                outer.events.extend(json.loads(body))
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.refused = require_client_cert(self.httpd, pki) if pki else []
        scheme = "https" if pki else "http"
        self.url = f"{scheme}://127.0.0.1:{self.httpd.server_address[1]}/"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _tls_es(pki: Pki) -> tuple[EsTestServer, list[str]]:
    server = EsTestServer()
    refused = require_client_cert(server._httpd, pki)
    server.url = server.url.replace("http://", "https://")
    return server.start(), refused


def _tls_tcp(pki: Pki) -> tuple[JsonLinesServer, list[str]]:
    server = JsonLinesServer()
    refused = require_client_cert(server._srv, pki)
    return server.start(), refused


def _client(pki: Pki, which: str) -> dict[str, str]:
    options = {"ca_file": str(pki.ca)}
    if which == "client":
        options |= {"cert_file": str(pki.client_cert), "key_file": str(pki.client_key)}
    elif which == "rogue":
        options |= {"cert_file": str(pki.rogue_cert), "key_file": str(pki.rogue_key)}
    return options


@pytest.fixture
def tls_sink(pki: Pki) -> Iterator[Callable[[str], tuple[dict[str, Any], Callable[[], int], list[str]]]]:
    """(sink options but TLS, delivered-event counter, refused handshakes) per sink."""
    stops: list[Callable[[], None]] = []

    def make(sink: str) -> tuple[dict[str, Any], Callable[[], int], list[str]]:
        if sink == "elasticsearch":
            es, refused = _tls_es(pki)
            stops.append(es.stop)
            return ({"url": es.url, "index": "logs-modelmon-tls"},
                    lambda: len(es.docs("logs-modelmon-tls")) if "logs-modelmon-tls" in es.indices
                    else 0, refused)
        if sink == "logstash_tcp":
            tcp, refused = _tls_tcp(pki)
            stops.append(tcp.stop)
            return {"host": "127.0.0.1", "port": tcp.port, "tls": True}, lambda: len(tcp.events), refused
        http = _HttpInput(pki)
        stops.append(http.stop)
        return {"url": http.url}, lambda: len(http.events), http.refused

    yield make
    for stop in stops:
        stop()


def _wait_for(count: Callable[[], int], n: int) -> int:
    deadline = time.monotonic() + 5
    while count() < n and time.monotonic() < deadline:
        time.sleep(0.02)
    return count()


SINKS = ["elasticsearch", "logstash_tcp", "logstash_http"]


@pytest.mark.parametrize("sink", SINKS)
def test_with_the_client_certificate_every_event_is_delivered(pki, tls_sink, make_shipper, sink) -> None:
    options, delivered, refused = tls_sink(sink)
    shipper = make_shipper(sink=sink, **options, **_client(pki, "client"))
    for n in range(N):
        shipper.emit({"message": "over mTLS", "n": n})
    assert shipper.flush(10)
    assert _wait_for(delivered, N) == N
    assert shipper.spool.stats().delivered == N and refused == []


@pytest.mark.parametrize("which", ["none", "rogue"])
@pytest.mark.parametrize("sink", SINKS)
def test_without_a_valid_client_certificate_events_are_retried_and_kept(
    pki, tls_sink, make_shipper, sink, which
) -> None:
    options, delivered, refused = tls_sink(sink)
    shipper = make_shipper(sink=sink, **options, **_client(pki, which))
    for n in range(N):
        shipper.emit({"message": "refused", "n": n})
    assert not shipper.flush(1.0)
    stats = shipper.spool.stats()
    assert stats.pending == N and stats.delivered == 0 and stats.dropped_total == 0
    assert stats.dead_lettered == 0 and shipper.retried > 0
    assert delivered() == 0 and refused


def test_a_client_key_without_its_certificate_or_a_missing_tls_file_names_the_field(pki, tmp_path) -> None:
    section = {"sink": "elasticsearch", "spool_dir": str(tmp_path / "spool"),
               "elasticsearch": {"url": "https://127.0.0.1:9", "key_file": str(pki.client_key)}}
    with pytest.raises(ConfigError, match=r"logs\.elasticsearch\.cert_file"):
        check_sink(section)
    section["elasticsearch"] = {"url": "https://127.0.0.1:9", "cert_file": str(tmp_path / "nope.pem")}
    with pytest.raises(ConfigError, match=r"logs\.elasticsearch\.cert_file: .*nope\.pem"):
        check_sink(section)
    # An encrypted key would make OpenSSL ask for its passphrase on the terminal.
    section["elasticsearch"] = {"url": "https://127.0.0.1:9", "cert_file": str(pki.client_cert),
                                "key_file": str(pki.encrypted_client_key)}
    with pytest.raises(ConfigError, match=r"logs\.elasticsearch\.cert_file: .*unencrypted"):
        check_sink(section)
    section = {"sink": "logstash_tcp", "spool_dir": str(tmp_path / "spool"),
               "logstash_tcp": {"port": 5044, "cert_file": str(pki.client_cert),
                                "key_file": str(pki.client_key)}}
    with pytest.raises(ConfigError, match=r"logs\.logstash_tcp\.tls"):
        check_sink(section)


def _capture_es_auth(es: EsTestServer) -> list[str | None]:
    seen: list[str | None] = []
    base = es._httpd.RequestHandlerClass

    class Capturing(base):  # type: ignore[misc, valid-type]
        def _handle(self) -> None:
            seen.append(self.headers.get("Authorization"))
            super()._handle()

        do_GET = do_POST = do_PUT = do_HEAD = do_DELETE = _handle

    es._httpd.RequestHandlerClass = Capturing
    return seen


@pytest.mark.parametrize("how", ["api_key_file", "password_file", "api_key", "password",
                                 "url_userinfo", "http_password_file", "http_url_userinfo"])
def test_secrets_reach_the_server_and_nowhere_else(tmp_path, caplog, how) -> None:
    caplog.set_level(logging.DEBUG)
    (tmp_path / "secret").write_text(SECRET + "\n")
    secret_file = str(tmp_path / "secret")
    servers: list[Callable[[], None]] = []
    if how.startswith("http_"):
        http = _HttpInput()
        servers.append(http.stop)
        sink, sink_options = "logstash_http", {"url": http.url, "username": "shipper",
                                                "password_file": secret_file}
        if how == "http_url_userinfo":
            sink_options = {"url": http.url.replace("http://", f"http://shipper:{SECRET}@")}
        seen = http.authorization
    else:
        es = EsTestServer()
        seen = _capture_es_auth(es)
        es.start()
        servers.append(es.stop)
        sink = "elasticsearch"
        sink_options = {"url": es.url, "index": "logs-modelmon-secret"}
        sink_options |= {
            "api_key_file": {"api_key_file": secret_file},
            "password_file": {"username": "shipper", "password_file": secret_file},
            "api_key": {"api_key": SECRET},
            "password": {"username": "shipper", "password": SECRET},
            "url_userinfo": {"url": es.url.replace("http://", f"http://shipper:{SECRET}@")},
        }[how]
    section = {"sink": sink, "spool_dir": str(tmp_path / "spool"), sink: sink_options,
               "backoff": {"initial": "20ms", "max": "100ms"}}
    from prometheus_client import CollectorRegistry

    from modelmon.exporters.logs import LogShipper

    options = shipper_options(section, tmp_path)
    registry = CollectorRegistry()
    shipper = LogShipper(**options, registry=registry)
    try:
        for n in range(5):
            shipper.emit({"message": "with a secret in the config", "n": n})
        assert shipper.flush(10)
        metrics = generate_latest(registry).decode()
    finally:
        shipper.close(timeout=1)
        for stop in servers:
            stop()
    # A failure is logged with the URL: the same settings, a port nobody listens on.
    from modelmon.demo.processes import free_port

    dead = {**sink_options, "url": re.sub(r":\d+/?", f":{free_port()}/", sink_options["url"], count=1)}
    down = LogShipper(**shipper_options({**section, sink: dead, "spool_dir": str(tmp_path / "s2")},
                                        tmp_path), registry=CollectorRegistry())
    try:
        down.emit({"message": "while the server is gone"})
        assert not down.flush(0.5)
    finally:
        down.close(timeout=0.5)
    assert "connection" in caplog.text.lower() or "refused" in caplog.text.lower()
    assert seen and all(auth is not None for auth in seen)
    scheme, value = seen[0].split(" ", 1)
    assert SECRET in (value if scheme == "ApiKey" else base64.b64decode(value).decode())
    assert SECRET not in caplog.text
    assert SECRET not in metrics
    assert SECRET not in repr(options) and SECRET not in str(options)
    assert SECRET not in repr(shipper.__dict__)


def test_a_secret_and_its_file_together_are_refused(tmp_path) -> None:
    (tmp_path / "secret").write_text("x")
    section = {"sink": "elasticsearch", "elasticsearch": {
        "url": "http://127.0.0.1:9", "api_key": "a", "api_key_file": str(tmp_path / "secret")}}
    with pytest.raises(ConfigError, match=r"logs\.elasticsearch\.api_key_file: set api_key or api_key_file"):
        shipper_options(section, tmp_path)


def test_setup_es_takes_the_connection_with_secret_files_from_the_config(tmp_path, capsys) -> None:
    from modelmon.cli import main

    es = EsTestServer()
    seen = _capture_es_auth(es)
    es.start()
    try:
        (tmp_path / "key").write_text(SECRET + "\n")
        (tmp_path / "modelmon.yml").write_text(
            f"logs:\n  sink: elasticsearch\n  elasticsearch:\n    url: {es.url}\n"
            "    api_key_file: key\n")
        assert main(["logs", "setup-es", "--config", str(tmp_path / "modelmon.yml")]) == 0
    finally:
        es.stop()
    assert seen and all(auth == f"ApiKey {SECRET}" for auth in seen)
    assert SECRET not in capsys.readouterr().out
