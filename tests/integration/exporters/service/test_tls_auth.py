"""modelmon serve with TLS and basic auth (exporter-toolkit web config), scraped
by a real Prometheus configured the way an operator would."""

from __future__ import annotations

import http.client
import socket
import ssl
import subprocess
import sys

import bcrypt
import pytest
import requests
import yaml

from modelmon.demo.processes import running_prometheus


def openssl(*args: str, cwd) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture
def certs(tmp_path):
    d = tmp_path / "pki"
    d.mkdir()
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt",
            "-days", "2", "-subj", "/CN=modelmon test CA", cwd=d)
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
            "-subj", "/CN=127.0.0.1", cwd=d)
    (d / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", "server.crt", "-days", "2", "-extfile", "san.ext", cwd=d)
    return d


def test_prometheus_scrapes_over_tls_with_basic_auth(certs, tmp_path, start_server,
                                                     prometheus_binary, modelmon_cmd):
    hashed = bcrypt.hashpw(b"scrape-pw", bcrypt.gensalt(rounds=6)).decode()
    (tmp_path / "web.yml").write_text(yaml.safe_dump({
        "tls_server_config": {"cert_file": str(certs / "server.crt"),
                              "key_file": str(certs / "server.key")},
        "basic_auth_users": {"prometheus": hashed},
    }))
    (tmp_path / "serve.yml").write_text("web_config_file: web.yml\n")
    server = start_server([*modelmon_cmd, "serve", "--config", str(tmp_path / "serve.yml"),
                           "--listen", "127.0.0.1:{port}"], scheme="https", ready=False)
    url = server.url
    ca = str(certs / "ca.crt")
    import time
    deadline = time.monotonic() + 60
    while True:
        try:
            assert requests.get(f"{url}/healthz", verify=ca, timeout=2).status_code == 200
            break
        except requests.RequestException:
            assert server.proc.poll() is None, server.output()
            assert time.monotonic() < deadline, server.output()
            time.sleep(0.2)

    assert requests.get(f"{url}/metrics", verify=ca, timeout=5).status_code == 401
    assert requests.get(f"{url}/metrics", verify=ca, auth=("prometheus", "nope"),
                        timeout=5).status_code == 401
    r = requests.post(f"{url}/ingest", verify=ca, auth=("prometheus", "scrape-pw"),
                      json={"model": "secure-model", "latency_seconds": 0.01}, timeout=5)
    assert r.status_code == 200
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(f"{url}/healthz", timeout=5)  # not trusted without the CA

    config = {
        "global": {"scrape_interval": "1s"},
        "scrape_configs": [{
            "job_name": "modelmon", "scheme": "https",
            "tls_config": {"ca_file": ca},
            "basic_auth": {"username": "prometheus", "password": "scrape-pw"},
            "static_configs": [{"targets": [url.removeprefix("https://")]}],
        }, {
            "job_name": "no-credentials", "scheme": "https", "tls_config": {"ca_file": ca},
            "static_configs": [{"targets": [url.removeprefix("https://")]}],
        }],
    }
    with running_prometheus(config, binary=prometheus_binary, workdir=tmp_path / "prom") as prom:
        prom.wait_for('modelmon_inference_requests_total{model="secure-model"}')
        up = {r["metric"]["job"]: r["value"][1] for r in prom.wait_for("up")}
        deadline = time.monotonic() + 20
        while len(up) < 2 and time.monotonic() < deadline:
            time.sleep(0.5)
            up = {r["metric"]["job"]: r["value"][1] for r in prom.query("up")}
        assert up == {"modelmon": "1", "no-credentials": "0"}


# --- every tls_server_config setting enforced on the wire (real TLS clients) ---

@pytest.fixture
def pki(certs):
    """certs plus a client certificate from the CA (SAN client.example) and a self-made one."""
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "client.key", "-out", "client.csr",
            "-subj", "/CN=client", cwd=certs)
    (certs / "client.ext").write_text("subjectAltName=DNS:client.example\n")
    openssl("x509", "-req", "-in", "client.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", "client.crt", "-days", "2", "-extfile", "client.ext",
            cwd=certs)
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "rogue.key", "-out",
            "rogue.crt", "-days", "2", "-subj", "/CN=rogue",
            "-addext", "subjectAltName=DNS:client.example", cwd=certs)
    return certs


def wait_for_banner(server) -> None:
    """modelmon serve prints its banner once it listens (and never when it cannot)."""
    import time
    deadline = time.monotonic() + 60
    while "modelmon serve: https://" not in server.output():
        assert server.proc.poll() is None, server.output()
        assert time.monotonic() < deadline, server.output()
        time.sleep(0.1)


def serve_tls(start_server, modelmon_cmd, tmp_path, pki, *flags: str, **tls_extra):
    web = {"tls_server_config": {"cert_file": str(pki / "server.crt"),
                                 "key_file": str(pki / "server.key"), **tls_extra},
           "http_server_config": {"headers": {"X-Content-Type-Options": "nosniff"}}}
    (tmp_path / "web.yml").write_text(yaml.safe_dump(web))
    (tmp_path / "serve.yml").write_text("web_config_file: web.yml\n")
    server = start_server([*modelmon_cmd, "serve", "--config", str(tmp_path / "serve.yml"),
                           "--listen", "127.0.0.1:{port}", *flags], scheme="https",
                          ready=False)
    wait_for_banner(server)
    return server


def client(pki, cert: str | None = None, **settings) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    if cert:
        ctx.load_cert_chain(str(pki / f"{cert}.crt"), str(pki / f"{cert}.key"))
    for name, value in settings.items():
        if name == "ciphers":
            ctx.set_ciphers(value)
        else:
            setattr(ctx, name, value)
    return ctx


def get(server, ctx: ssl.SSLContext) -> tuple[int, str, str, http.client.HTTPResponse] | str:
    """(status, TLS version, cipher, response) or 'refused'."""
    host, port = server.url.removeprefix("https://").split(":")
    conn = http.client.HTTPSConnection(host, int(port), context=ctx, timeout=10)
    try:
        conn.request("GET", "/healthz")
        r = conn.getresponse()
        r.read()
        return r.status, conn.sock.version(), conn.sock.cipher()[0], r
    except (ssl.SSLError, ConnectionError, http.client.RemoteDisconnected):
        return "refused"
    finally:
        conn.close()


def test_min_version_is_enforced(start_server, modelmon_cmd, tmp_path, pki):
    server = serve_tls(start_server, modelmon_cmd, tmp_path, pki, min_version="TLS13")
    assert get(server, client(pki, maximum_version=ssl.TLSVersion.TLSv1_2)) == "refused"
    status, version, _, r = get(server, client(pki))
    assert (status, version) == (200, "TLSv1.3")
    assert r.headers["X-Content-Type-Options"] == "nosniff"


def test_max_version_and_cipher_suites_are_enforced(start_server, modelmon_cmd, tmp_path, pki):
    server = serve_tls(start_server, modelmon_cmd, tmp_path, pki, max_version="TLS12",
                       cipher_suites=["TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"])
    assert get(server, client(pki, minimum_version=ssl.TLSVersion.TLSv1_3)) == "refused"
    assert get(server, client(pki, ciphers="ECDHE-RSA-AES128-GCM-SHA256")) == "refused"
    status, version, cipher, _ = get(server, client(pki))
    assert (status, version, cipher) == (200, "TLSv1.2", "ECDHE-RSA-AES256-GCM-SHA384")


def test_curve_preferences_are_enforced(start_server, modelmon_cmd, tmp_path, pki):
    server = serve_tls(start_server, modelmon_cmd, tmp_path, pki, curve_preferences=["CurveP384"])
    x25519_only = client(pki)
    x25519_only.set_ecdh_curve("X25519")
    assert get(server, x25519_only) == "refused"
    p384 = client(pki)
    p384.set_ecdh_curve("secp384r1")
    assert get(server, p384)[0] == 200


def test_require_and_verify_client_cert_refuses_clients_without_a_ca_signed_cert(
        start_server, modelmon_cmd, tmp_path, pki):
    server = serve_tls(start_server, modelmon_cmd, tmp_path, pki,
                       client_auth_type="RequireAndVerifyClientCert",
                       client_ca_file=str(pki / "ca.crt"))
    assert get(server, client(pki)) == "refused"
    assert get(server, client(pki, "rogue")) == "refused"
    assert get(server, client(pki, "client"))[0] == 200


def test_verify_client_cert_if_given_refuses_only_bad_certs(start_server, modelmon_cmd,
                                                            tmp_path, pki):
    server = serve_tls(start_server, modelmon_cmd, tmp_path, pki,
                       client_auth_type="VerifyClientCertIfGiven",
                       client_ca_file=str(pki / "ca.crt"))
    assert get(server, client(pki))[0] == 200
    assert get(server, client(pki, "rogue")) == "refused"
    assert get(server, client(pki, "client"))[0] == 200


def test_client_allowed_sans_closes_other_clients(start_server, modelmon_cmd, tmp_path, pki):
    server = serve_tls(start_server, modelmon_cmd, tmp_path, pki,
                       client_auth_type="RequireAndVerifyClientCert",
                       client_ca_file=str(pki / "ca.crt"), client_allowed_sans=["other.example"])
    assert get(server, client(pki, "client")) == "refused"
    (tmp_path / "b").mkdir()
    server = serve_tls(start_server, modelmon_cmd, tmp_path / "b", pki,
                       client_auth_type="RequireAndVerifyClientCert",
                       client_ca_file=str(pki / "ca.crt"), client_allowed_sans=["client.example"])
    assert get(server, client(pki, "client"))[0] == 200


def run_serve(tmp_path, pki, **tls):
    (tmp_path / "web.yml").write_text(yaml.safe_dump({"tls_server_config": tls}))
    (tmp_path / "serve.yml").write_text("web_config_file: web.yml\n")
    return subprocess.run([sys.executable, "-m", "modelmon", "serve", "--config",
                           str(tmp_path / "serve.yml"), "--listen", "127.0.0.1:0"],
                          capture_output=True, text=True, timeout=60)


def test_require_any_client_cert_is_refused_at_start_with_the_alternative(tmp_path, pki):
    r = run_serve(tmp_path, pki, cert_file=str(pki / "server.crt"),
                  key_file=str(pki / "server.key"), client_auth_type="RequireAnyClientCert",
                  client_ca_file=str(pki / "ca.crt"))
    assert r.returncode == 2, r.stderr
    assert "tls_server_config.client_auth_type" in r.stderr
    assert "RequireAndVerifyClientCert" in r.stderr


@pytest.mark.parametrize("broken,field", [
    ("key_file", "tls_server_config.key_file"),
    ("cert_file", "tls_server_config.cert_file"),
    ("mismatch", "tls_server_config.key_file"),
    ("client_ca_file", "tls_server_config.client_ca_file"),
])
def test_a_bad_tls_file_is_one_message_naming_its_field_and_no_banner(tmp_path, pki, broken,
                                                                       field):
    (tmp_path / "junk.pem").write_text("-----BEGIN PRIVATE KEY-----\nnot a key\n")
    tls = {"cert_file": str(pki / "server.crt"), "key_file": str(pki / "server.key")}
    if broken == "mismatch":
        tls["key_file"] = str(pki / "ca.key")
    elif broken == "client_ca_file":
        tls.update(client_auth_type="RequireAndVerifyClientCert",
                   client_ca_file=str(tmp_path / "junk.pem"))
    else:
        tls[broken] = str(tmp_path / "junk.pem")
    r = run_serve(tmp_path, pki, **tls)
    assert r.returncode == 2, r.stdout + r.stderr
    assert field in r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "modelmon serve:" not in r.stdout  # no banner before it can serve


def test_inline_cert_and_key_are_served(start_server, modelmon_cmd, tmp_path, pki):
    web = {"tls_server_config": {"cert": (pki / "server.crt").read_text(),
                                 "key": (pki / "server.key").read_text()}}
    (tmp_path / "web.yml").write_text(yaml.safe_dump(web))
    (tmp_path / "serve.yml").write_text("web_config_file: web.yml\n")
    server = start_server([*modelmon_cmd, "serve", "--config", str(tmp_path / "serve.yml"),
                           "--listen", "127.0.0.1:{port}"], scheme="https", ready=False)
    wait_for_banner(server)
    assert get(server, client(pki))[0] == 200


def test_a_renewed_certificate_is_served_without_a_restart(start_server, modelmon_cmd,
                                                           tmp_path, pki):
    live = tmp_path / "live"
    live.mkdir()
    for name in ("server.crt", "server.key"):
        (live / name).write_bytes((pki / name).read_bytes())
    web = {"tls_server_config": {"cert_file": str(live / "server.crt"),
                                 "key_file": str(live / "server.key")}}
    (tmp_path / "web.yml").write_text(yaml.safe_dump(web))
    (tmp_path / "serve.yml").write_text("web_config_file: web.yml\n")
    server = start_server([*modelmon_cmd, "serve", "--config", str(tmp_path / "serve.yml"),
                           "--listen", "127.0.0.1:{port}"], scheme="https", ready=False)
    wait_for_banner(server)

    def serial() -> str:
        host, port = server.url.removeprefix("https://").split(":")
        with socket.create_connection((host, int(port))) as raw, \
                client(pki).wrap_socket(raw, server_hostname=host) as tls:
            return tls.getpeercert()["serialNumber"]

    before = serial()
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "new.key", "-out", "new.csr",
            "-subj", "/CN=127.0.0.1", cwd=pki)
    openssl("x509", "-req", "-in", "new.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", "new.crt", "-days", "2", "-extfile", "san.ext", cwd=pki)
    (live / "server.key").write_bytes((pki / "new.key").read_bytes())
    (live / "server.crt").write_bytes((pki / "new.crt").read_bytes())
    assert serial() != before


def test_clients_stalling_in_the_tls_handshake_hold_no_thread(start_server, modelmon_cmd,
                                                             tmp_path, pki):
    import time
    server = serve_tls(start_server, modelmon_cmd, tmp_path, pki, "--header-timeout", "2")
    host, port = server.url.removeprefix("https://").split(":")
    stalled = []
    for _ in range(16):  # the first bytes of a ClientHello, then nothing
        s = socket.create_connection((host, int(port)))
        s.sendall(b"\x16\x03\x01\x02\x00")
        stalled.append(s)
    opened = time.monotonic()
    try:
        for _ in range(5):
            assert get(server, client(pki))[0] == 200
        for s in stalled:
            s.settimeout(10)
            try:
                assert s.recv(100) == b""
            except ConnectionResetError:
                pass
        assert time.monotonic() - opened < 2 + 1.5
    finally:
        for s in stalled:
            s.close()
