"""remote_write authentication for managed Prometheus services: SigV4 checked by
a verifier independent of botocore (support.sigv4_verifier, itself checked on
AWS's test-suite vectors), OAuth2 client credentials against a token endpoint
whose tokens expire mid-run, a plugin's scheme; and a 401/403 holds the samples,
sending nothing with the refused credentials, until they change."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from modelmon.config import ConfigError
from modelmon.exporters.edge import EdgeAgent, edge_config_from_mapping
from modelmon.exporters.edge.auth import (
    AuthRequest,
    CredentialsUnavailable,
    OAuth2ClientCredentials,
    SigV4,
)
from modelmon.exporters.service.monitor import ModelMonitor
from modelmon.hookspecs import hookimpl
from modelmon.plugin_manager import get_plugin_manager
from support.edge_unit import T0, drain, make_agent
from support.oauth2_server import TokenEndpoint, serve_token_endpoint
from support.remote_write_receiver import Receiver
from support.sigv4_verifier import canonical_request, signing_key, string_to_sign, verify

KEY_ID, SECRET = "AKIDMODELMONTEST", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
REGION, SERVICE = "eu-west-1", "aps"


@pytest.fixture
def registry() -> CollectorRegistry:
    registry = CollectorRegistry()
    ModelMonitor("fraud", version="3", registry=registry).observe_inference(0.02)
    return registry


def _requests(registry: CollectorRegistry, outcome: str) -> float:
    return registry.get_sample_value("modelmon_edge_send_requests_total",
                                     {"device": "press-7", "outcome": outcome}) or 0.0


def _steps(agent: EdgeAgent, n: int) -> None:
    agent.spool.flush_buffer()
    for _ in range(n):
        agent.sender.step()


# -- SigV4 -----------------------------------------------------------------------

@pytest.mark.parametrize("method,headers,expected", [
    ("GET", {"Host": "example.amazonaws.com", "X-Amz-Date": "20150830T123600Z"},
     "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"),  # get-vanilla
    ("POST", {"Host": "example.amazonaws.com", "X-Amz-Date": "20150830T123600Z"},
     "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"),  # post-vanilla
])
def test_the_verifier_agrees_with_the_aws_test_suite(method, headers, expected) -> None:
    canonical = canonical_request(method, "/", "", headers, ["host", "x-amz-date"], b"")
    key = signing_key(SECRET, "20150830", "us-east-1", "service")
    to_sign = string_to_sign("20150830T123600Z", "20150830/us-east-1/service/aws4_request",
                             canonical)
    assert hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest() == expected


def _signed(body: bytes) -> AuthRequest:
    request = AuthRequest("POST", "http://127.0.0.1:9/workspaces/ws-1/api/v1/remote_write",
                          {"Content-Type": "application/x-protobuf",
                           "Content-Encoding": "snappy"}, body)
    SigV4(region=REGION, access_key=KEY_ID, secret_key=SECRET).authorize(request)
    request.headers["Host"] = "127.0.0.1:9"
    return request


def test_a_sigv4_request_verifies_and_a_tampered_or_expired_one_does_not() -> None:
    request = _signed(b"\x00samples")
    target = "/workspaces/ws-1/api/v1/remote_write"
    secrets = {KEY_ID: SECRET}
    assert verify("POST", target, request.headers, request.body, secrets, REGION, SERVICE) is None
    assert verify("POST", target, request.headers, b"\x00sampleZ", secrets, REGION,
                  SERVICE) == "SignatureDoesNotMatch"
    later = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=6)
    assert "expired" in str(verify("POST", target, request.headers, request.body, secrets,
                                   REGION, SERVICE, now=later))
    assert verify("POST", target, request.headers, request.body, {KEY_ID: "other"}, REGION,
                  SERVICE) == "SignatureDoesNotMatch"


def _sigv4_gate(secrets: dict[str, str]) -> Any:
    def gate(method: str, path: str, headers: dict[str, str], body: bytes) -> Any:
        problem = verify(method, path, headers, body, secrets, REGION, SERVICE)
        return None if problem is None else (403, problem)
    return gate


def test_sigv4_samples_are_held_on_403_and_sent_once_the_credentials_file_is_rotated(
        tmp_path, receiver: Receiver, registry, monkeypatch, caplog) -> None:
    credentials = tmp_path / "aws-credentials"
    credentials.write_text(f"[edge]\naws_access_key_id = {KEY_ID}\n"
                           "aws_secret_access_key = an-old-revoked-secret\n")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                 "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    receiver.gate = _sigv4_gate({KEY_ID: SECRET})
    agent = make_agent(tmp_path, receiver.url, registry,
                       sigv4={"region": REGION, "profile": "edge"})
    try:
        spooled = sum(agent.collect_once(now=T0 + i) for i in range(3))
        _steps(agent, 10)
        assert len(receiver.requests) == 1  # refused once, never asked again with the same key
        assert receiver.requests[0]["refused"] == 403
        assert agent.spool.stats().pending_items == spooled  # held, not dropped
        assert _requests(registry, "unauthorized") == 1
        assert sum("refused the credentials" in r.message and "remote_write.sigv4" in r.message
                   for r in caplog.records) == 1
        credentials.write_text(f"[edge]\naws_access_key_id = {KEY_ID}\n"
                               f"aws_secret_access_key = {SECRET}\n")
        drain(agent)
        assert agent.spool.stats().pending == 0
    finally:
        agent.stop()
    assert len(receiver.accepted) == spooled  # every sample once, each request verified
    assert [r.get("refused") for r in receiver.requests][1:] == [None] * (len(receiver.requests) - 1)


# -- OAuth2 ----------------------------------------------------------------------

@pytest.fixture
def token_endpoint() -> Iterator[TokenEndpoint]:
    endpoint, server = serve_token_endpoint("edge-7", "client-s3cret", lifetime=1.0,
                                            scopes={"metrics.write"})
    yield endpoint
    server.shutdown()
    server.server_close()


def _oauth2(endpoint: TokenEndpoint, secret_file: Path) -> dict[str, Any]:
    return {"oauth2": {"client_id": "edge-7", "client_secret_file": str(secret_file),
                       "token_url": endpoint.url, "scopes": ["metrics.write"],
                       "endpoint_params": {"audience": "prometheus"}}}


def test_oauth2_tokens_are_refreshed_before_they_expire_and_after_a_revocation(
        tmp_path, receiver, registry, token_endpoint) -> None:
    secret = tmp_path / "client-secret"
    secret.write_text("client-s3cret\n")
    receiver.gate = lambda m, p, headers, b: (None if token_endpoint.check(
        headers.get("Authorization")) else (401, "invalid or expired token"))
    agent = make_agent(tmp_path, receiver.url, registry, **_oauth2(token_endpoint, secret))
    spooled = 0
    try:
        deadline = time.monotonic() + 2.6  # tokens live 1 s: several expire mid-run
        while time.monotonic() < deadline:
            spooled += agent.collect_once(now=T0 + spooled)
            drain(agent)
            time.sleep(0.15)
        assert not [r for r in receiver.requests if r.get("refused")]  # never sent an expired one
        assert len(token_endpoint.requests) >= 3
        assert token_endpoint.requests[0] == {"grant_type": "client_credentials",
                                              "audience": "prometheus", "scope": "metrics.write"}
        token_endpoint.lifetime = 60.0  # the next token is used (and cached) until revoked
        time.sleep(1.0)
        spooled += agent.collect_once(now=T0 + spooled)
        drain(agent)
        token_endpoint.revoke_all()  # the authorization server ends every session early
        spooled += agent.collect_once(now=T0 + spooled)
        drain(agent)
        assert agent.spool.stats().pending == 0
    finally:
        agent.stop()
    assert [r["refused"] for r in receiver.requests if r.get("refused")] == [401]
    assert len(receiver.accepted) == spooled


def test_a_refused_client_secret_holds_the_samples_until_the_secret_file_changes(
        tmp_path, receiver, registry, token_endpoint, caplog) -> None:
    secret = tmp_path / "client-secret"
    secret.write_text("stale-secret\n")
    agent = make_agent(tmp_path, receiver.url, registry, **_oauth2(token_endpoint, secret))
    try:
        spooled = agent.collect_once(now=T0)
        _steps(agent, 8)
        assert len(token_endpoint.requests) == 1 and receiver.requests == []
        assert agent.spool.stats().pending_items == spooled
        messages = [r.message for r in caplog.records if "refused" in r.message]
        assert len(messages) == 1 and "invalid_client" in messages[0]
        assert "remote_write.oauth2" in messages[0]
        secret.write_text("client-s3cret\n")
        drain(agent)
    finally:
        agent.stop()
    assert len(receiver.accepted) == spooled


def test_a_token_endpoint_that_is_down_is_retried_not_held() -> None:
    auth = OAuth2ClientCredentials(client_id="edge-7", client_secret="client-s3cret",
                                   token_url="http://127.0.0.1:1/token", timeout=2)
    with pytest.raises(CredentialsUnavailable, match="remote_write.oauth2: token endpoint"):
        auth.authorize(AuthRequest("POST", "http://x/", {}, b""))


# -- a plugin's scheme -------------------------------------------------------------

class _ApiKeyScheme:
    field_name = "remote_write.auth"

    def __init__(self, key_file: Path) -> None:
        self.key_file = key_file

    def authorize(self, request: AuthRequest) -> None:
        request.headers["X-Api-Key"] = self.key_file.read_text().strip()

    def fingerprint(self) -> bytes:
        return self.key_file.read_bytes()

    def renew(self) -> bool:
        return False


class _Plugin:
    @hookimpl
    def modelmon_register_remote_write_auth(self, register: Any) -> None:
        register("api_key", lambda settings: _ApiKeyScheme(Path(settings["key_file"])))


@pytest.fixture
def api_key_plugin() -> Iterator[None]:
    pm = get_plugin_manager()
    plugin = _Plugin()
    pm.register(plugin, name="test-api-key-auth")
    yield
    pm.unregister(plugin)


def test_a_plugin_scheme_authenticates_and_is_held_like_the_others(
        tmp_path, receiver, registry, api_key_plugin) -> None:
    key = tmp_path / "api-key"
    key.write_text("old\n")
    receiver.gate = lambda m, p, headers, b: (None if headers.get("X-Api-Key") == "new"
                                              else (401, "bad key"))
    agent = make_agent(tmp_path, receiver.url, registry,
                       auth={"provider": "api_key", "key_file": str(key)})
    try:
        spooled = agent.collect_once(now=T0)
        _steps(agent, 5)
        assert len(receiver.requests) == 1
        key.write_text("new\n")
        drain(agent)
    finally:
        agent.stop()
    assert len(receiver.accepted) == spooled


# -- configuration errors ------------------------------------------------------------

@pytest.mark.parametrize("remote_write,message", [
    ({"oauth2": {"client_id": "a", "token_url": "http://t/"}},
     "edge.remote_write.oauth2.client_secret: set client_secret or client_secret_file"),
    ({"oauth2": {"client_id": "a", "client_secret": "s", "token_url": "ftp://t/"}},
     "edge.remote_write.oauth2.token_url: expected an http(s) URL"),
    ({"sigv4": {"region": "eu-west-1", "access_key": "AKID"}},
     "edge.remote_write.sigv4.secret_key: set access_key and secret_key together"),
    ({"sigv4": {"region": "eu-west-1"}, "basic_auth": {"username": "u", "password": "p"}},
     "edge.remote_write.sigv4: set one of basic_auth, sigv4, not several"),
    ({"auth": {"provider": "nope"}}, "edge.remote_write.auth.provider: unknown provider 'nope'"),
    ({"oauth2": {"client_id": "a", "client_secret": "s", "token_url": "http://t/",
                 "scope": ["x"]}}, "edge.remote_write.oauth2.scope: unknown key"),
])
def test_bad_auth_settings_name_the_field_and_the_fix(tmp_path, remote_write, message) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        edge_config_from_mapping({"edge": {
            "device_id": "d", "spool": {"path": str(tmp_path)},
            "remote_write": {"url": "http://127.0.0.1:9/api/v1/write", **remote_write}}})


def test_secrets_stay_out_of_the_config_repr(tmp_path) -> None:
    config = edge_config_from_mapping({"edge": {
        "device_id": "d", "spool": {"path": str(tmp_path)},
        "remote_write": {"url": "http://127.0.0.1:9/api/v1/write", "oauth2": {
            "client_id": "a", "client_secret": "s3cr3t-Zq81", "token_url": "http://t/"}}}})
    assert "s3cr3t-Zq81" not in repr(config)
    config = edge_config_from_mapping({"edge": {
        "device_id": "d", "spool": {"path": str(tmp_path)},
        "remote_write": {"url": "http://127.0.0.1:9/api/v1/write", "sigv4": {
            "region": "eu-west-1", "access_key": "AKID", "secret_key": "s3cr3t-Zq81"}}}})
    assert "s3cr3t-Zq81" not in repr(config)
