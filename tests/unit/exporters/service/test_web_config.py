"""Every exporter-toolkit web-config key is honoured or refused at start, by name."""

from __future__ import annotations

import ssl

import pytest

from modelmon.config import ConfigError
from modelmon.exporters.service.web_config import web_config_from_mapping


@pytest.fixture
def pem(tmp_path):
    (tmp_path / "s.crt").write_text("-----BEGIN CERTIFICATE-----\n")
    (tmp_path / "s.key").write_text("-----BEGIN PRIVATE KEY-----\n")
    (tmp_path / "ca.crt").write_text("-----BEGIN CERTIFICATE-----\n")
    return {"cert_file": "s.crt", "key_file": "s.key"}


def tls(tmp_path, pem, **extra):
    return web_config_from_mapping({"tls_server_config": {**pem, **extra}}, tmp_path).tls


@pytest.mark.parametrize("extra,fragment", [
    ({"min_version": "TLS99"}, "tls_server_config.min_version: expected one of"),
    ({"max_version": "TLS14"}, "tls_server_config.max_version: expected one of"),
    ({"min_version": "TLS13", "max_version": "TLS12"}, "tls_server_config.min_version"),
    ({"cipher_suites": ["TLS_INVENTED_CIPHER"]}, "tls_server_config.cipher_suites"),
    ({"cipher_suites": ["TLS_AES_128_GCM_SHA256"]}, "tls_server_config.cipher_suites: lists only"),
    ({"curve_preferences": ["CurveP999"]}, "tls_server_config.curve_preferences"),
    ({"curve_preferences": ["X25519", "CurveP256"]}, "tls_server_config.curve_preferences"),
    ({"client_auth_type": "RequireAnyClientCert", "client_ca_file": "ca.crt"},
     "tls_server_config.client_auth_type: RequireAnyClientCert .* RequireAndVerifyClientCert"),
    ({"client_auth_type": "RequireClientCert"}, "tls_server_config.client_auth_type"),
    ({"client_auth_type": "RequireAndVerifyClientCert"}, "tls_server_config.client_ca_file"),
    ({"client_auth_type": "VerifyClientCertIfGiven"}, "tls_server_config.client_ca_file"),
    ({"client_ca_file": "ca.crt"}, "tls_server_config.client_ca_file: set without client_auth"),
    ({"client_allowed_sans": ["a"]}, "tls_server_config.client_allowed_sans"),
    ({"prefer_server_cipher_suites": "yes"}, "tls_server_config.prefer_server_cipher_suites"),
    ({"cert": "-----BEGIN CERTIFICATE-----"}, "tls_server_config.cert: set cert or cert_file"),
    ({"tls_typo": 1}, "tls_server_config.tls_typo: unknown key"),
])
def test_tls_settings_that_cannot_be_honoured_are_refused_by_name(tmp_path, pem, extra, fragment):
    with pytest.raises(ConfigError, match=fragment.replace(".", r"\.").replace(r"\.*", ".*")):
        tls(tmp_path, pem, **extra)


def test_tls_settings_reach_the_tls_config(tmp_path, pem):
    t = tls(tmp_path, pem, min_version="TLS13", max_version="TLS13",
            cipher_suites=["TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", "TLS_AES_128_GCM_SHA256"],
            curve_preferences=["CurveP384"], prefer_server_cipher_suites=False,
            client_auth_type="RequireAndVerifyClientCert", client_ca_file="ca.crt",
            client_allowed_sans=["client.example"])
    assert t.min_version == ssl.TLSVersion.TLSv1_3 and t.max_version == ssl.TLSVersion.TLSv1_3
    assert t.ciphers == ("ECDHE-RSA-AES256-GCM-SHA384",)
    assert t.curve == "secp384r1" and t.prefer_server_cipher_suites is False
    assert t.client_auth == ssl.CERT_REQUIRED and t.client_allowed_sans == ("client.example",)


def test_tls_defaults_are_exporter_toolkits(tmp_path, pem):
    t = tls(tmp_path, pem)
    assert (t.min_version, t.max_version) == (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3)
    assert t.client_auth == ssl.CERT_NONE and t.prefer_server_cipher_suites is True


@pytest.mark.parametrize("data,fragment", [
    ({"http_server_config": {"http2": True}}, "http_server_config.http2"),
    ({"http_server_config": {"headers": {"X-Powered-By": "x"}}},
     "http_server_config.headers.X-Powered-By"),
    ({"http_server_config": {"headers": {"X-Frame-Options": "allow"}}},
     "http_server_config.headers.X-Frame-Options: expected one of deny, sameorigin"),
    ({"http_server_config": {"headers": {"X-Content-Type-Options": "sniff"}}},
     "http_server_config.headers.X-Content-Type-Options"),
    ({"http_server_config": {"compress": True}}, "http_server_config.compress: unknown key"),
    ({"rate_limit": {"interval": "fast", "burst": 1}}, "rate_limit.interval"),
    ({"rate_limit": {"interval": "1s", "burst": 0}}, "rate_limit.burst"),
    ({"rate_limit": {"period": "1s"}}, "rate_limit.period: unknown key"),
    ({"basic_auth_users": {"u": "$2y$10$short"}}, "basic_auth_users.u"),
])
def test_http_settings_that_cannot_be_honoured_are_refused_by_name(tmp_path, data, fragment):
    with pytest.raises(ConfigError, match=fragment.replace(".", r"\.")):
        web_config_from_mapping(data, tmp_path)


def test_http_settings_are_read(tmp_path):
    web = web_config_from_mapping({
        "http_server_config": {"http2": False, "headers": {
            "X-Frame-Options": "deny", "Content-Security-Policy": "default-src 'none'",
            "X-XSS-Protection": ""}},
        "rate_limit": {"interval": "1m30s", "burst": 3},
    }, tmp_path)
    assert web.headers == {"X-Frame-Options": "deny",
                           "Content-Security-Policy": "default-src 'none'"}
    assert web.rate_limit is not None
    assert (web.rate_limit.interval_seconds, web.rate_limit.burst) == (90.0, 3)
    assert web_config_from_mapping({"rate_limit": {"interval": 0}}, tmp_path).rate_limit is None
