"""The ``edge.alerting`` section: where the device's alerts go, and how often.

Example::

    edge:
      rules: [rules/*.yml]
      alerting:
        alertmanagers:                # several for an HA pair: each gets every alert
          - url: https://am-1.example:9093     # /api/v2/alerts is appended
            timeout: 10s
            basic_auth: {username: edge, password_file: /etc/modelmon/am-pw}
            tls: {ca_file: /etc/modelmon/ca.pem}
          - url: https://am-2.example:9093
        resend_delay: 1m              # a firing alert is sent again this often (Prometheus's
                                      # --rules.alert.resend-delay)
        external_url: http://press-line-7.plant-3:9108   # base of generatorURL
        for_outage_tolerance: 1h      # alert state older than this is not restored at start
        for_grace_period: 10m         # a restored pending alert waits at least this long
        spool_max_bytes: 16MiB        # the alert spool's bound (<spool.path>/alerts-spool)

Auth and TLS take the same keys as ``remote_write`` (basic_auth,
authorization, bearer_token[_file], tls), read by the same code.
"""

from __future__ import annotations

import re
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelmon.config import ConfigError

from ..remote_write import TLS, Auth, without_userinfo

ALERTMANAGER_API_PATH = "/api/v2/alerts"


@dataclass(frozen=True)
class AlertmanagerTarget:
    url: str  # the Alertmanager's base URL (with any path prefix), without credentials
    timeout: float = 10.0
    auth: Auth = field(default_factory=Auth)
    tls: TLS = field(default_factory=TLS)

    @property
    def alerts_url(self) -> str:
        return self.url.rstrip("/") + ALERTMANAGER_API_PATH


@dataclass(frozen=True)
class AlertingConfig:
    alertmanagers: tuple[AlertmanagerTarget, ...] = ()
    resend_delay: float = 60.0
    external_url: str = ""
    for_outage_tolerance: float = 3600.0
    for_grace_period: float = 600.0
    spool_max_bytes: int = 16 * 1024**2


def alerting_config(raw: Any, where: str, base_dir: Path | None,
                    listen: tuple[str, int] | None) -> AlertingConfig | None:
    """The checked ``alerting`` section (``where`` is its path, e.g. ``edge.alerting.``),
    or None when absent."""
    from ..config import _auth, _Fields, _tls

    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise ConfigError(f"{where.rstrip('.')}: expected a mapping with alertmanagers, got {raw!r}")
    p = _Fields(raw, where, base_dir)
    p.only("alertmanagers", "resend_delay", "external_url", "for_outage_tolerance",
           "for_grace_period", "spool_max_bytes")
    managers = raw.get("alertmanagers")
    if not isinstance(managers, list) or not managers:
        raise ConfigError(f"{where}alertmanagers: required, a list such as "
                          "[{url: http://alertmanager:9093}]")
    targets = []
    for index, entry in enumerate(managers):
        item = f"{where}alertmanagers[{index}]."
        if not isinstance(entry, dict):
            raise ConfigError(f"{item.rstrip('.')}: expected a mapping with url, got {entry!r}")
        m = _Fields(entry, item, base_dir)
        m.only("url", "timeout", "basic_auth", "authorization", "bearer_token",
               "bearer_token_file", "tls")
        url = m.required_str("url")
        if not re.match(r"^https?://[^/\s]+", url):
            raise ConfigError(f"{item}url: expected an http(s) URL such as "
                              f"http://alertmanager:9093, got {without_userinfo(url)!r}")
        if url.rstrip("/").endswith(ALERTMANAGER_API_PATH):
            raise ConfigError(f"{item}url: give the Alertmanager's base URL (without "
                              f"{ALERTMANAGER_API_PATH}, which is appended), got {url!r}")
        auth = _auth(m, url)
        timeout = m.duration("timeout", AlertmanagerTarget.timeout)
        if timeout <= 0:
            raise ConfigError(f"{item}timeout: expected a positive duration such as 10s")
        targets.append(AlertmanagerTarget(without_userinfo(url), timeout, auth,
                                          _tls(m.section("tls"))))
    durations = {}
    for key in ("resend_delay", "for_outage_tolerance", "for_grace_period"):
        durations[key] = p.duration(key, getattr(AlertingConfig, key))
        if durations[key] <= 0:
            raise ConfigError(f"{where}{key}: expected a positive duration")
    external_url = p.optional_str("external_url")
    if external_url is None:
        external_url = default_external_url(listen)
    elif not re.match(r"^https?://[^/\s]+", external_url):
        raise ConfigError(f"{where}external_url: expected an http(s) URL such as "
                          f"http://device:9108, got {external_url!r}")
    return AlertingConfig(
        alertmanagers=tuple(targets),
        external_url=external_url.rstrip("/"),
        spool_max_bytes=p.size("spool_max_bytes", AlertingConfig.spool_max_bytes),
        **durations,
    )


def default_external_url(listen: tuple[str, int] | None) -> str:
    """Where an operator reaches the agent: its host name and listen port (the
    query API answers there), as Prometheus defaults to http://<hostname>:9090."""
    host = socket.gethostname()
    return f"http://{host}:{listen[1]}" if listen is not None else f"http://{host}"
