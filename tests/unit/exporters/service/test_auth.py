"""Basic auth in exporter-toolkit web-config format: every route but /healthz is closed."""

from __future__ import annotations

import base64

import bcrypt
import pytest

from modelmon.config import ConfigError, ServeConfig
from modelmon.exporters.service.app import create_app
from modelmon.exporters.service.web_config import web_config_from_mapping

HASH = bcrypt.hashpw(b"s3cret", bcrypt.gensalt(rounds=4)).decode().replace("$2b$", "$2y$")


def basic(user, password):
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


@pytest.fixture
def client(registry, tmp_path):
    web = web_config_from_mapping({"basic_auth_users": {"prom": HASH}}, tmp_path)
    return create_app(ServeConfig(), registry=registry, web_config=web).test_client()


@pytest.mark.parametrize("method,path", [("GET", "/metrics"), ("POST", "/ingest"), ("GET", "/nope")])
@pytest.mark.parametrize("headers", [{}, basic("prom", "wrong"), basic("eve", "s3cret"),
                                     {"Authorization": "Basic !!!"}, {"Authorization": "Bearer x"}])
def test_routes_answer_401_without_valid_credentials(client, method, path, headers):
    r = client.open(path, method=method, headers=headers, json={})
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"].startswith("Basic")


def test_valid_credentials_open_the_routes_and_healthz_stays_open(client):
    assert client.get("/healthz").status_code == 200
    assert client.get("/metrics", headers=basic("prom", "s3cret")).status_code == 200
    r = client.post("/ingest", headers=basic("prom", "s3cret"),
                    json={"model": "m", "latency_seconds": 0.1})
    assert r.status_code == 200
    # served from the verified-credentials cache the second time
    assert client.get("/metrics", headers=basic("prom", "s3cret")).status_code == 200


@pytest.mark.parametrize("data,fragment", [
    ({"basic_auth_users": {"prom": "plaintext"}}, "basic_auth_users.prom: expected a bcrypt hash"),
    ({"tls_server_config": {"cert_file": "missing.crt", "key_file": "k"}},
     "tls_server_config.cert_file: file"),
    ({"tls_server_config": {"cert_file": "a", "client_auth_type": "Maybe"}},
     "tls_server_config.client_auth_type"),
    ({"tls_config": {}}, "tls_config: unknown key"),
])
def test_bad_web_config_names_the_field(tmp_path, data, fragment):
    with pytest.raises(ConfigError, match=fragment.replace(".", r"\.")):
        web_config_from_mapping(data, tmp_path)
