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


COST10 = bcrypt.hashpw(b"s3cret", bcrypt.gensalt(rounds=10)).decode()


def test_unknown_and_known_users_cost_the_same_bcrypt_and_a_cached_credential_none(tmp_path):
    web = web_config_from_mapping({"basic_auth_users": {"prom": COST10}}, tmp_path)
    auth = web.basic_auth
    assert not web.check_authorization(basic("eve", "guess")["Authorization"])
    assert auth.bcrypt_checks == 1
    assert not web.check_authorization(basic("prom", "guess")["Authorization"])
    assert auth.bcrypt_checks == 2  # one comparison each: no user enumeration by work done
    assert web.check_authorization(basic("prom", "s3cret")["Authorization"])
    assert auth.bcrypt_checks == 3
    for _ in range(5):  # a scrape every second: cached, no bcrypt
        assert web.check_authorization(basic("prom", "s3cret")["Authorization"])
        assert not web.check_authorization(basic("prom", "guess")["Authorization"])
    assert auth.bcrypt_checks == 3


def test_password_guessing_queues_at_most_a_few_checks_and_the_rest_get_429(tmp_path):
    import threading

    slow = bcrypt.hashpw(b"s3cret", bcrypt.gensalt(rounds=12)).decode()
    web = web_config_from_mapping({"basic_auth_users": {"prom": slow}}, tmp_path)
    auth = web.basic_auth
    barrier = threading.Barrier(8)
    verdicts = []

    def guess(i):
        barrier.wait()
        verdicts.append(auth.check(basic("prom", f"guess{i}")["Authorization"]))

    threads = [threading.Thread(target=guess, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert True not in verdicts
    assert verdicts.count(None) >= 8 - 3  # one running + two waiting at most
    assert auth.bcrypt_checks == verdicts.count(False)


def test_over_long_passwords_are_refused_not_a_500(client):
    assert client.get("/metrics", headers=basic("prom", "x" * 100)).status_code == 401


def test_configured_headers_are_on_every_response_including_refusals(registry, tmp_path):
    web = web_config_from_mapping({
        "basic_auth_users": {"prom": HASH},
        "http_server_config": {"headers": {"X-Frame-Options": "deny",
                                           "X-Content-Type-Options": "nosniff"}},
    }, tmp_path)
    c = create_app(ServeConfig(), registry=registry, web_config=web).test_client()
    for r in (c.get("/healthz"), c.get("/metrics"), c.get("/metrics", headers=basic("prom", "s3cret"))):
        assert r.headers["X-Frame-Options"] == "deny"
        assert r.headers["X-Content-Type-Options"] == "nosniff"


def test_rate_limit_answers_429_past_the_burst(registry, tmp_path):
    web = web_config_from_mapping({"rate_limit": {"interval": "1h", "burst": 3}}, tmp_path)
    c = create_app(ServeConfig(), registry=registry, web_config=web).test_client()
    assert [c.get("/healthz").status_code for _ in range(5)] == [200, 200, 200, 429, 429]
