"""modelmon serve with TLS and basic auth (exporter-toolkit web config), scraped
by a real Prometheus configured the way an operator would."""

from __future__ import annotations

import subprocess

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
