"""The bundle URL's GET as a device meets it: redirects of object stores and CDNs
(credentials never follow to another origin), the environment's proxy, TLS with
a client certificate, an answer larger than any bundle, a 304.

Each case is a pull of ``BundleManager`` against loopback HTTP servers that
record what they were sent.
"""

from __future__ import annotations

import http.server
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from modelmon.exporters.edge.auth import Auth
from modelmon.exporters.edge.bundles.format import MAX_BUNDLE_BYTES, build_bundle
from modelmon.exporters.edge.bundles.manager import BundleManager
from modelmon.exporters.edge.bundles.telemetry import BundleMetrics
from modelmon.exporters.edge.config import BundleConfig
from modelmon.exporters.edge.remote_write import TLS
from support.tls_certs import Pki, make_pki, require_client_cert

RULES = """groups:
- name: fleet
  rules:
  - alert: Up
    expr: vector(1) > 0
"""


@dataclass
class Site:
    """A loopback HTTP server answering each path with a handler of its routes."""

    routes: dict[str, Callable[[http.server.BaseHTTPRequestHandler], None]] = field(
        default_factory=dict)
    seen: list[tuple[str, str | None, str | None]] = field(default_factory=list)
    server: http.server.ThreadingHTTPServer | None = None

    @property
    def origin(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_port}"


@pytest.fixture()
def sites() -> Iterator[Callable[..., Site]]:
    started: list[Site] = []

    def start(tls: Pki | None = None) -> Site:
        site = Site()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                site.seen.append((self.path, self.headers.get("Authorization"),
                                  self.headers.get("If-None-Match")))
                key = self.path if self.path in site.routes else self.path.split("?")[0]
                handler = site.routes.get(key)
                if handler is None:
                    self.send_error(404)
                    return
                handler(self)

            def log_message(self, *_: object) -> None:
                return None

        site.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if tls is not None:
            require_client_cert(site.server, tls)
        threading.Thread(target=site.server.serve_forever, daemon=True).start()
        started.append(site)
        return site

    yield start
    for site in started:
        assert site.server is not None
        site.server.shutdown()
        site.server.server_close()


def redirect(to: str, code: int = 302) -> Callable[[http.server.BaseHTTPRequestHandler], None]:
    def answer(handler: http.server.BaseHTTPRequestHandler) -> None:
        handler.send_response(code)
        handler.send_header("Location", to)
        handler.send_header("Content-Length", "0")
        handler.end_headers()
    return answer


def body(data: bytes, etag: str = '"b1"') -> Callable[[http.server.BaseHTTPRequestHandler], None]:
    def answer(handler: http.server.BaseHTTPRequestHandler) -> None:
        if handler.headers.get("If-None-Match") == etag:
            handler.send_response(304)
            handler.send_header("ETag", etag)
            handler.end_headers()
            return
        handler.send_response(200)
        handler.send_header("ETag", etag)
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)
    return answer


@pytest.fixture()
def bundle(tmp_path: Path) -> bytes:
    src = tmp_path / "src"
    (src / "rules").mkdir(parents=True)
    (src / "rules" / "fleet.yml").write_text(RULES)
    (src / "bundle.yml").write_text("version: '7'\n")
    return build_bundle(src)


def manager(tmp_path: Path, url: str, **config: object) -> tuple[BundleManager, list[str]]:
    installed: list[str] = []
    settings = BundleConfig(url=url, allow_unsigned=True, timeout=5, **config)  # type: ignore[arg-type]
    return BundleManager(settings, tmp_path / "state", BundleMetrics(
        CollectorRegistry(), "modelmon_", "dev-1"), lambda b: installed.append(b.version)), installed


@pytest.mark.parametrize("code", [301, 302, 303, 307, 308])
def test_credentials_follow_redirects_within_their_origin_only(
        tmp_path: Path, sites: Callable[..., Site], bundle: bytes, code: int) -> None:
    store = sites()  # another port: another origin, as an object store's presigned URL
    store.routes["/signed/site-a.tar.gz"] = body(bundle)
    fleet = sites()
    fleet.routes["/site-a.tar.gz"] = redirect("/v7/site-a.tar.gz", code)  # same origin
    fleet.routes["/v7/site-a.tar.gz"] = redirect(f"{store.origin}/signed/site-a.tar.gz", code)
    pull, installed = manager(tmp_path, f"{fleet.origin}/site-a.tar.gz",
                              auth=Auth(bearer_token="s3cr3t"))
    assert pull.pull() == "applied" and installed == ["7"]
    assert [auth for _, auth, _ in fleet.seen] == ["Bearer s3cr3t", "Bearer s3cr3t"]
    assert store.seen == [("/signed/site-a.tar.gz", None, None)]


def test_basic_auth_and_the_etag_make_the_second_pull_a_304(
        tmp_path: Path, sites: Callable[..., Site], bundle: bytes) -> None:
    fleet = sites()
    fleet.routes["/b.tar.gz"] = body(bundle, etag='"v7"')
    pull, installed = manager(tmp_path, f"{fleet.origin}/b.tar.gz",
                              auth=Auth(username="dev-1", password="pw"))
    assert [pull.pull(), pull.pull()] == ["applied", "unchanged"] and installed == ["7"]
    assert fleet.seen == [("/b.tar.gz", "Basic ZGV2LTE6cHc=", None),
                          ("/b.tar.gz", "Basic ZGV2LTE6cHc=", '"v7"')]


@pytest.mark.parametrize("target", ["ftp://127.0.0.1/site-a.tar.gz", "file:///etc/passwd"])
def test_a_redirect_out_of_http_is_a_failed_pull(
        tmp_path: Path, sites: Callable[..., Site], target: str) -> None:
    fleet = sites()
    fleet.routes["/site-a.tar.gz"] = redirect(target)
    pull, installed = manager(tmp_path, f"{fleet.origin}/site-a.tar.gz")
    assert pull.pull() == "failed" and installed == []
    assert "302" in pull.last_error or "not allowed" in pull.last_error


def test_endless_redirects_are_a_failed_pull(tmp_path: Path, sites: Callable[..., Site]) -> None:
    fleet = sites()
    fleet.routes["/loop"] = redirect("/loop?again")
    pull, _ = manager(tmp_path, f"{fleet.origin}/loop")
    assert pull.pull() == "failed"
    assert len(fleet.seen) <= 11


def test_the_environment_s_proxy_is_used_unless_no_proxy_names_the_host(
        tmp_path: Path, sites: Callable[..., Site], bundle: bytes,
        monkeypatch: pytest.MonkeyPatch) -> None:
    proxy = sites()
    # A forward proxy is sent the absolute URL as the request target.
    target = "http://bundles.example.invalid/site-a.tar.gz"
    proxy.routes[target] = body(bundle)
    for name in ("http_proxy", "HTTP_PROXY", "no_proxy", "NO_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", proxy.origin)
    pull, installed = manager(tmp_path / "a", target)
    assert pull.pull() == "applied" and installed == ["7"]
    assert [path for path, _, _ in proxy.seen] == [target]

    # NO_PROXY naming the host: straight to it (loopback here: no name to resolve).
    origin = sites()
    origin.routes["/site-a.tar.gz"] = body(bundle)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    direct, installed = manager(tmp_path / "b", f"{origin.origin}/site-a.tar.gz")
    assert direct.pull() == "applied" and installed == ["7"]
    assert [path for path, _, _ in origin.seen] == ["/site-a.tar.gz"]
    assert len(proxy.seen) == 1


def test_an_answer_larger_than_a_bundle_is_refused_as_it_is_read(
        tmp_path: Path, sites: Callable[..., Site]) -> None:
    sent: list[int] = []

    def endless(handler: http.server.BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.end_headers()  # no length: read until the limit
        chunk = b"\0" * 65536
        try:
            for _ in range(MAX_BUNDLE_BYTES // len(chunk) * 4):
                handler.wfile.write(chunk)
                sent.append(len(chunk))
        except OSError:
            return

    fleet = sites()
    fleet.routes["/big.tar.gz"] = endless
    pull, installed = manager(tmp_path, f"{fleet.origin}/big.tar.gz")
    assert pull.pull() == "failed" and installed == []
    assert "larger than a bundle" in pull.last_error


def test_tls_with_the_sections_ca_and_client_certificate(
        tmp_path: Path, sites: Callable[..., Site], bundle: bytes) -> None:
    pki = make_pki(tmp_path / "pki")
    fleet = sites(tls=pki)
    fleet.routes["/site-a.tar.gz"] = body(bundle)
    url = f"https://127.0.0.1:{fleet.origin.rsplit(':', 1)[1]}/site-a.tar.gz"
    good, installed = manager(tmp_path / "good", url, tls=TLS(
        ca_file=pki.ca, cert_file=pki.client_cert, key_file=pki.client_key))
    assert good.pull() == "applied" and installed == ["7"]
    no_cert, _ = manager(tmp_path / "no-cert", url, tls=TLS(ca_file=pki.ca))
    assert no_cert.pull() == "failed"
    unknown_ca, _ = manager(tmp_path / "no-ca", url, tls=TLS(
        cert_file=pki.client_cert, key_file=pki.client_key))
    assert unknown_ca.pull() == "failed" and "CERTIFICATE_VERIFY_FAILED" in unknown_ca.last_error
    encrypted, _ = manager(tmp_path / "encrypted", url, tls=TLS(
        ca_file=pki.ca, cert_file=pki.client_cert, key_file=pki.encrypted_client_key))
    assert encrypted.pull() == "failed" and "encrypted" in encrypted.last_error
