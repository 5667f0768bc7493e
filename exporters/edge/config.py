"""The ``edge:`` section of the modelmon config file.

Example (``modelmon edge run --config edge.yaml``)::

    prefix: modelmon_                 # top level, shared with modelmon serve
    plugins:                          # top level: per-plugin settings
      system: {mountpoints: ["/", "/data"]}
    edge:
      device_id: press-line-7         # required; the label device="press-line-7" on every series
      interval: 10s                   # how often the sample stream is collected
      listen: 127.0.0.1:9108          # local /metrics; null to disable
      collectors: [system]            # plugin collectors by name ([system, docker]: model
                                      # containers, docs/containers.md); model KPIs of ModelMonitors
                                      # in the same process are always included
      labels: {site: plant-3}         # extra labels on every series (optional)
      rules: [rules/*.yml]            # Prometheus rule files evaluated on the device (optional)
      evaluation_interval: 30s        # how often the rules run; default: interval
      query_window: 1h                # history kept for /api/v1/query on the listen address
      rules_max_range: 6h             # a rule reading further back (range + offset) is refused,
                                      # bundles' included: the device keeps that much of every
                                      # series in memory
      alerting:                       # the rules' alerts to Alertmanager (optional; docs/edge.md)
        alertmanagers: [{url: http://alertmanager:9093}]   # auth and tls keys as in remote_write
        resend_delay: 1m              # see modelmon.exporters.edge.alerting.config
      bundle:                         # configuration bundles (optional; docs/edge.md)
        url: https://cloud.example/bundles/press-lines.tar.gz   # null: imported by hand only
        public_key: /etc/modelmon/bundle.pub   # Ed25519 (modelmon edge bundle keygen)
        allow_unsigned: false         # true: accept bundles without a signature
        poll_interval: 5m             # conditional GET (If-None-Match) this often, jittered
        timeout: 30s                  # basic_auth, authorization, tls: as in remote_write
      spool:
        path: /var/lib/modelmon/edge  # state directory: spool/, bundles/ and status.json
        max_bytes: 512MiB             # full policy applies above this
        max_age: 7d                   # older samples are dropped (reason max_age)
        full_policy: drop_oldest      # or drop_newest, block
        fsync: null                   # the spool's fsync mode (see modelmon.spool); null: its default
        encryption:                   # optional: AES-GCM at rest (docs/security.md)
          key_file: /etc/modelmon/spool.key   # or key_env: MODELMON_SPOOL_KEY, or kms: {provider: ...}
          previous_keys: []           # older keys: still decrypt, never encrypt
      remote_write:
        url: https://prom.example/api/v1/write
        timeout: 30s
        basic_auth: {username: edge, password_file: /etc/modelmon/pw}   # or password
        bearer_token_file: null       # or bearer_token, or authorization: {type: Bearer,
                                      #   credentials_file: /etc/modelmon/token} (or credentials)
        # or oauth2: {client_id, client_secret[_file], token_url, scopes, endpoint_params}
        # or sigv4: {region, access_key, secret_key, profile, role_arn} (modelmon[aws])
        # or auth: {provider: <plugin name>, ...} (docs/cloud.md)
        tls: {ca_file: null, cert_file: null, key_file: null, insecure_skip_verify: false}
                                      # cert_file/key_file: a client certificate (mTLS)
        headers: {}                   # extra HTTP headers, e.g. X-Scope-OrgID for Mimir (not the
                                      # protocol's own: Content-*, User-Agent, X-Prometheus-*)
        max_samples_per_send: 2000
        backfill_rate_limit: 20000    # samples/s sent, at most; null for no limit
        order: fifo                   # oldest first; live_first needs an out-of-order window
        min_backoff: 1s               # backoff base after 5xx/429/connection errors (full jitter:
        max_backoff: 1m               # each wait uniform in [0, min(max, base*2^n)])
        max_retry_duration: null      # give up on a batch after this long; null: retry forever
        reconnect_jitter: 0s          # after an outage, the backlog waits uniform [0, this] once
                                      # the link is back (live_first: new samples keep flowing);
                                      # e.g. 30s for a fleet that reconnects together (docs/edge.md)

A file without an ``edge:`` key is read as the edge section itself, so the
short form of the example above (``device_id`` at the top) works too.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from modelmon.config import ConfigError, load_yaml, parse_listen
from modelmon.kpi import DEFAULT_PREFIX
from modelmon.units import parse_duration, parse_size

from .alerting.config import AlertingConfig, alerting_config
from .auth import Auth, RequestAuth
from .remote_write import TLS, reserved_header, ssl_context, without_userinfo

Order = Literal["fifo", "live_first"]
FULL_POLICIES = ("drop_oldest", "drop_newest", "block")
_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


@dataclass(frozen=True)
class SpoolConfig:
    path: Path
    max_bytes: int = 512 * 1024**2
    max_age: float | None = 7 * 86400.0
    full_policy: str = "drop_oldest"
    fsync: str | None = None
    # The ``encryption:`` section, checked, keys not read yet (modelmon.spool.crypto).
    encryption: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class RemoteWriteConfig:
    url: str
    timeout: float = 30.0
    auth: RequestAuth = field(default_factory=Auth)
    tls: TLS = field(default_factory=TLS)
    # Out of repr: a managed receiver may take its API key in a header.
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    max_samples_per_send: int = 2000
    backfill_rate_limit: float | None = 20_000.0
    order: Order = "fifo"
    min_backoff: float = 1.0
    max_backoff: float = 60.0
    max_retry_duration: float | None = None
    # After an outage the backlog waits uniform [0, this] (modelmon.spool.reconnect); 0: off.
    reconnect_jitter: float = 0.0


@dataclass(frozen=True)
class BundleConfig:
    url: str | None = None  # None: bundles come only by ``modelmon edge bundle import``
    public_key: Path | None = None
    allow_unsigned: bool = False
    poll_interval: float = 300.0
    timeout: float = 30.0
    auth: Auth = field(default_factory=Auth)
    tls: TLS = field(default_factory=TLS)


@dataclass(frozen=True)
class EdgeConfig:
    device_id: str
    spool: SpoolConfig
    remote_write: RemoteWriteConfig
    interval: float = 10.0
    listen: tuple[str, int] | None = ("127.0.0.1", 9108)
    collectors: tuple[str, ...] = ("system",)
    labels: Mapping[str, str] = field(default_factory=dict)
    prefix: str = DEFAULT_PREFIX
    plugins: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    # The shared config file's ``logs:`` section: with it the agent ships
    # edge-link-lost / edge-link-restored events (docs/logging.md).
    logs: Mapping[str, Any] | None = None
    base_dir: Path | None = None
    # Prometheus rule files (paths or globs) evaluated on the device (docs/edge.md,
    # "Rules on the device"); every evaluation_interval (default: interval).
    rules: tuple[str, ...] = ()
    evaluation_interval: float | None = None
    # How much of its own history the agent keeps for /api/v1/query (with rules:
    # at least what the rules reach); null and no rules: no local query API.
    query_window: float | None = None
    # The longest range + offset a rule may read (its own files', a bundle's): the rule
    # window keeps that much of every series in memory.
    rules_max_range: float = 6 * 3600.0
    # Configuration bundles pulled or imported (modelmon.exporters.edge.bundles).
    bundle: BundleConfig | None = None
    # Where the rules' alerts go (modelmon.exporters.edge.alerting); None: nowhere.
    alerting: AlertingConfig | None = None
    # The keys the edge section sets itself: they win over a bundle's (bundles.overrides).
    own_keys: frozenset[str] = frozenset()

    @property
    def state_dir(self) -> Path:
        return self.spool.path

    @property
    def spool_dir(self) -> Path:
        return self.spool.path / "spool"

    @property
    def status_file(self) -> Path:
        return self.spool.path / "status.json"


def load_edge_config(path: str | Path) -> EdgeConfig:
    """Read and validate a config file; errors name the file and the field."""
    path = Path(path)
    try:
        return edge_config_from_mapping(load_yaml(path), path.parent)
    except ConfigError as exc:
        raise ConfigError(f"config file {path}: {exc}") from None


def edge_config_from_mapping(data: Mapping[str, Any], base_dir: Path | None = None) -> EdgeConfig:
    logs = None
    if "edge" in data:
        section, where = data["edge"], "edge."
        prefix = data.get("prefix", DEFAULT_PREFIX)
        plugins = data.get("plugins") or {}
        logs = data.get("logs")
        if logs is not None:
            from modelmon.exporters.logs.config import hide_secrets, shipper_options

            shipper_options(logs, base_dir)  # fail here, naming logs.<field>
            logs = hide_secrets(logs)  # EdgeConfig's repr gets logged
    else:
        section, where = data, ""
        prefix = DEFAULT_PREFIX
        plugins = {}
    if not isinstance(section, Mapping):
        raise ConfigError(f"{where or 'config'}: expected a mapping with device_id, spool, remote_write")
    p = _Fields(section, where, base_dir)
    p.only("device_id", "interval", "listen", "collectors", "labels", "spool", "remote_write",
           "rules", "evaluation_interval", "query_window", "rules_max_range", "bundle",
           "alerting")
    device_id = p.required_str("device_id")
    if not re.fullmatch(r"[A-Za-z0-9_.:@/-]+", device_id):
        raise ConfigError(
            f"{where}device_id: use letters, digits and _.:@/- (no spaces), got {device_id!r}"
        )
    if not isinstance(prefix, str) or not _LABEL_NAME.match(prefix):
        raise ConfigError(f"prefix: expected letters, digits and '_' like 'modelmon_', got {prefix!r}")
    if not isinstance(plugins, Mapping) or not all(isinstance(v, Mapping | None) for v in plugins.values()):
        raise ConfigError("plugins: expected a mapping of plugin name to its settings mapping")
    listen: tuple[str, int] | None = ("127.0.0.1", 9108)
    if "listen" in section:
        raw = section["listen"]
        listen = None if raw in (None, "", False) else parse_listen(raw, f"{where}listen")
    collectors = section.get("collectors", ["system"])
    if collectors is None:
        collectors = []
    if not isinstance(collectors, list) or not all(isinstance(c, str) and c for c in collectors):
        raise ConfigError(f"{where}collectors: expected a list of collector names such as [system], got {collectors!r}")
    labels = section.get("labels") or {}
    if not isinstance(labels, Mapping):
        raise ConfigError(f"{where}labels: expected a mapping of label name to value")
    for name, value in labels.items():
        if not isinstance(name, str) or not _LABEL_NAME.match(name) or name.startswith("__") or name == "device":
            raise ConfigError(
                f"{where}labels.{name}: not a usable label name (letters, digits, '_'; not "
                "'device', not starting with '__')"
            )
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            raise ConfigError(f"{where}labels.{name}: expected a string value, got {value!r}")
    rules_max_range = p.duration("rules_max_range", 6 * 3600.0)
    rules = _rules(section.get("rules"), where, base_dir, rules_max_range)
    evaluation_interval = p.optional_duration("evaluation_interval", None)
    query_window = p.optional_duration("query_window", None)
    bundle = _bundle(p.section("bundle"), base_dir) if section.get("bundle") is not None \
        else None
    return EdgeConfig(
        bundle=bundle,
        alerting=alerting_config(section.get("alerting"), f"{where}alerting.", base_dir, listen),
        rules=rules,
        evaluation_interval=evaluation_interval,
        query_window=query_window,
        rules_max_range=rules_max_range,
        device_id=device_id,
        spool=_spool(p.section("spool", required=True), base_dir),
        remote_write=_remote_write(p.section("remote_write", required=True), base_dir),
        interval=p.duration("interval", 10.0),
        listen=listen,
        collectors=tuple(collectors),
        labels={str(k): str(v) for k, v in labels.items()},
        prefix=prefix,
        plugins={str(k): dict(v or {}) for k, v in plugins.items()},
        logs=logs,
        base_dir=base_dir,
        own_keys=frozenset(map(str, section)),
    )


def _rules(raw: Any, where: str, base_dir: Path | None, max_range: float) -> tuple[str, ...]:
    """``rules: [paths or globs]``, each file loaded now so that a bad rule stops
    ``edge run`` with the file, group, rule and construct named."""
    if raw is None:
        return ()
    if not isinstance(raw, list) or not all(isinstance(r, str) and r for r in raw):
        raise ConfigError(f"{where}rules: expected a list of rule file paths or globs, got {raw!r}")
    if raw:
        from modelmon.exporters.edge.rules import RuleFileError, load_rule_files
        from modelmon.exporters.edge.rules.files import check_max_range

        try:
            check_max_range(load_rule_files(raw, base_dir), int(max_range * 1000),
                            f"{where}rules_max_range")
        except RuleFileError as exc:
            raise ConfigError(f"{where}rules: {exc}") from None
    return tuple(raw)


def _bundle(p: _Fields, base_dir: Path | None) -> BundleConfig:
    """``bundle:``; the public key is read now, so a wrong key stops ``edge run``."""
    p.only("url", "public_key", "allow_unsigned", "poll_interval", "timeout", "basic_auth",
           "authorization", "bearer_token", "bearer_token_file", "tls")
    url = p.optional_str("url")
    if url is not None and not re.match(r"^https?://[^/\s]+", url):
        raise ConfigError(f"{p.where}url: expected an http(s) URL such as "
                          f"https://cloud.example/bundles/site-a.tar.gz, got {without_userinfo(url)!r}")
    allow_unsigned = p.data.get("allow_unsigned", False)
    if not isinstance(allow_unsigned, bool):
        raise ConfigError(f"{p.where}allow_unsigned: expected true or false, got {allow_unsigned!r}")
    public_key = p.path("public_key")
    if public_key is None and not allow_unsigned:
        raise ConfigError(f"{p.where}public_key: required, the Ed25519 public key bundles are "
                          "signed with ('modelmon edge bundle keygen' writes one); or set "
                          "allow_unsigned: true to accept bundles checked by hash only")
    if public_key is not None:
        # Read without cryptography, which never loads into the agent (bundles.signing).
        from .bundles.signing import BundleKeyError, check_public_key_file

        try:
            check_public_key_file(public_key)
        except BundleKeyError as exc:
            raise ConfigError(f"{p.where}public_key: {exc}") from None
    poll_interval = p.duration("poll_interval", BundleConfig.poll_interval)
    if poll_interval <= 0:
        raise ConfigError(f"{p.where}poll_interval: must be longer than 0s")
    return BundleConfig(
        url=None if url is None else without_userinfo(url),
        public_key=public_key,
        allow_unsigned=allow_unsigned,
        poll_interval=poll_interval,
        timeout=p.duration("timeout", BundleConfig.timeout),
        auth=_auth(p, url or "http://localhost/"),
        tls=_tls(p.section("tls")),
    )


class _Fields:
    """Typed reads from one mapping; every error names ``where`` + the key."""

    def __init__(self, data: Mapping[str, Any], where: str, base_dir: Path | None) -> None:
        self.data = data
        self.where = where
        self.base_dir = base_dir

    def only(self, *known: str) -> None:
        unknown = sorted(str(k) for k in set(self.data) - set(known))
        if unknown:
            raise ConfigError(
                f"{self.where}{unknown[0]}: unknown key; known keys here are {', '.join(known)}"
            )

    def required_str(self, key: str) -> str:
        value = self.data.get(key)
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(f"{self.where}{key}: required, expected a non-empty string, got {value!r}")
        return value.strip()

    def optional_str(self, key: str) -> str | None:
        value = self.data.get(key)
        if value is None:
            return None
        if not isinstance(value, str):
            raise ConfigError(f"{self.where}{key}: expected a string, got {value!r}")
        return value

    def path(self, key: str) -> Path | None:
        value = self.optional_str(key)
        if value is None:
            return None
        path = Path(value).expanduser()
        return path if path.is_absolute() or self.base_dir is None else self.base_dir / path

    def duration(self, key: str, default: float) -> float:
        if key not in self.data:
            return default
        try:
            return parse_duration(self.data[key], f"{self.where}{key}")
        except ValueError as exc:
            raise ConfigError(str(exc)) from None

    def optional_duration(self, key: str, default: float | None) -> float | None:
        if key not in self.data:
            return default
        if self.data[key] is None:
            return None
        return self.duration(key, 0.0)  # the key is present: no default applies

    def size(self, key: str, default: int) -> int:
        if key not in self.data:
            return default
        try:
            return parse_size(self.data[key], f"{self.where}{key}")
        except ValueError as exc:
            raise ConfigError(str(exc)) from None

    def positive_int(self, key: str, default: int) -> int:
        value = self.data.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"{self.where}{key}: expected a positive integer, got {value!r}")
        return value

    def choice(self, key: str, choices: tuple[str, ...], default: str) -> str:
        value = self.data.get(key, default)
        if value not in choices:
            raise ConfigError(f"{self.where}{key}: expected one of {', '.join(choices)}, got {value!r}")
        return str(value)

    def section(self, key: str, required: bool = False) -> _Fields:
        value = self.data.get(key)
        if value is None and not required:
            value = {}
        if not isinstance(value, Mapping):
            raise ConfigError(f"{self.where}{key}: required, expected a mapping" if value is None
                              else f"{self.where}{key}: expected a mapping, got {value!r}")
        return _Fields(value, f"{self.where}{key}.", self.base_dir)


def _spool(p: _Fields, base_dir: Path | None) -> SpoolConfig:
    from modelmon.spool.keys import encryption_section

    p.only("path", "max_bytes", "max_age", "full_policy", "fsync", "encryption")
    path = p.path("path")
    if path is None:
        raise ConfigError(f"{p.where}path: required, the agent's state directory such as /var/lib/modelmon/edge")
    return SpoolConfig(
        path=path,
        max_bytes=p.size("max_bytes", SpoolConfig.max_bytes),
        max_age=p.optional_duration("max_age", SpoolConfig.max_age),
        full_policy=p.choice("full_policy", FULL_POLICIES, "drop_oldest"),
        fsync=p.optional_str("fsync"),
        encryption=encryption_section(p.data.get("encryption"), f"{p.where}encryption",
                                      base_dir),
    )


def _auth(p: _Fields, url: str) -> Auth:
    """basic_auth, authorization (Prometheus's), bearer_token[_file] or the URL's
    user:password; secrets inline or from files, which are read at each send."""
    basic = p.section("basic_auth")
    basic.only("username", "password", "password_file")
    username = basic.optional_str("username")
    if username is None and basic.data:
        raise ConfigError(f"{basic.where}username: required when basic_auth is set")
    if basic.data.get("password") is not None and basic.data.get("password_file") is not None:
        raise ConfigError(f"{basic.where}password_file: set password or password_file, not both")
    authz = p.section("authorization")
    authz.only("type", "credentials", "credentials_file")
    scheme = authz.optional_str("type") or "Bearer"
    if not re.fullmatch(r"[A-Za-z0-9!#$%&'*+.^_`|~-]+", scheme) or scheme.lower() == "basic":
        raise ConfigError(f"{authz.where}type: expected an HTTP auth scheme such as Bearer "
                          "(use basic_auth for Basic)")
    token, token_file = authz.optional_str("credentials"), authz.path("credentials_file")
    if token is not None and token_file is not None:
        raise ConfigError(f"{authz.where}credentials_file: set credentials or credentials_file, not both")
    bearer, bearer_file = p.optional_str("bearer_token"), p.path("bearer_token_file")
    if bearer is not None and bearer_file is not None:
        raise ConfigError(f"{p.where}bearer_token_file: set bearer_token or bearer_token_file, not both")
    if authz.data and (bearer is not None or bearer_file is not None):
        raise ConfigError(f"{p.where}authorization: set authorization or bearer_token[_file], not both")
    token, token_file = (token, token_file) if authz.data else (bearer, bearer_file)
    if username is not None and (token or token_file):
        raise ConfigError(f"{p.where}basic_auth: set basic_auth or a bearer token, not both")
    parsed = urllib.parse.urlsplit(url)
    if parsed.username is not None:
        if username is not None or token or token_file:
            raise ConfigError(f"{p.where}url: has user:password@ and other credentials; keep one")
        username = urllib.parse.unquote(parsed.username)
        password: str | None = urllib.parse.unquote(parsed.password or "")
    else:
        password = basic.optional_str("password")
    auth = Auth(username=username, password=password, password_file=basic.path("password_file"),
                bearer_token=token, bearer_token_file=token_file, scheme=scheme)
    for field_name, secret in (("basic_auth.password_file", auth.password_file),
                               ("authorization.credentials_file" if authz.data else "bearer_token_file",
                                auth.bearer_token_file)):
        if secret is not None and not secret.is_file():
            raise ConfigError(
                f"{p.where}{field_name}: credentials file {secret} does not exist or is not a file"
            )
    return auth


def _other_auth(p: _Fields, tls: TLS) -> RequestAuth | None:
    """oauth2, sigv4 or a plugin's ``auth: {provider: ...}`` (docs/cloud.md), or None;
    each excludes every other way of giving credentials."""
    from .auth import OAuth2ClientCredentials, SigV4, plugin_auth

    given = [k for k in ("basic_auth", "authorization", "bearer_token", "bearer_token_file",
                         "oauth2", "sigv4", "auth") if p.data.get(k) is not None]
    chosen = [k for k in given if k in ("oauth2", "sigv4", "auth")]
    if not chosen:
        return None
    if len(given) > 1:
        raise ConfigError(f"{p.where}{chosen[0]}: set one of {', '.join(given)}, not several")
    if "@" in urllib.parse.urlsplit(str(p.data.get("url"))).netloc:
        raise ConfigError(f"{p.where}url: has user:password@ and {chosen[0]}; keep one")
    section = p.section(chosen[0])
    if chosen[0] == "oauth2":
        section.only("client_id", "client_secret", "client_secret_file", "token_url", "scopes",
                     "endpoint_params")
        secret, secret_file = section.optional_str("client_secret"), section.path("client_secret_file")
        if (secret is None) == (secret_file is None):
            raise ConfigError(f"{section.where}client_secret: set client_secret or "
                              "client_secret_file (one of them)")
        if secret_file is not None and not secret_file.is_file():
            raise ConfigError(f"{section.where}client_secret_file: {secret_file} does not exist "
                              "or is not a file")
        token_url = section.required_str("token_url")
        if not re.match(r"^https?://[^/\s]+", token_url):
            raise ConfigError(f"{section.where}token_url: expected an http(s) URL, got {token_url!r}")
        scopes = section.data.get("scopes") or []
        params = section.data.get("endpoint_params") or {}
        if not isinstance(scopes, list) or not all(isinstance(x, str) for x in scopes):
            raise ConfigError(f"{section.where}scopes: expected a list of strings")
        if not isinstance(params, Mapping) or not all(isinstance(v, str) for v in params.values()):
            raise ConfigError(f"{section.where}endpoint_params: expected a mapping of strings")
        https = token_url.startswith("https:")
        return OAuth2ClientCredentials(
            client_id=section.required_str("client_id"), token_url=token_url,
            client_secret=secret, client_secret_file=secret_file, scopes=tuple(scopes),
            endpoint_params={str(k): v for k, v in params.items()},
            timeout=p.duration("timeout", RemoteWriteConfig.timeout),
            ssl_context=ssl_context(tls) if https else None)
    try:
        if chosen[0] == "sigv4":
            section.only("region", "access_key", "secret_key", "profile", "role_arn", "service")
            access, secret = section.optional_str("access_key"), section.optional_str("secret_key")
            if (access is None) != (secret is None):
                raise ConfigError(f"{section.where}secret_key: set access_key and secret_key "
                                  "together (or neither, for a profile or the default chain)")
            return SigV4(region=section.required_str("region"), access_key=access,
                         secret_key=secret, profile=section.optional_str("profile"),
                         role_arn=section.optional_str("role_arn"),
                         service=section.optional_str("service") or "aps")
        return plugin_auth(section.data)
    except ValueError as exc:
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(f"{p.where}{exc}") from None


def _tls(tls_fields: _Fields) -> TLS:
    """Prometheus's tls_config keys: a CA to verify the receiver, a client
    certificate and key for receivers that require one (mTLS)."""
    tls_fields.only("ca_file", "cert_file", "key_file", "insecure_skip_verify")
    skip = tls_fields.data.get("insecure_skip_verify", False)
    if not isinstance(skip, bool):
        raise ConfigError(f"{tls_fields.where}insecure_skip_verify: expected true or false, got {skip!r}")
    tls = TLS(ca_file=tls_fields.path("ca_file"), cert_file=tls_fields.path("cert_file"),
              key_file=tls_fields.path("key_file"), insecure_skip_verify=skip)
    if tls.key_file is not None and tls.cert_file is None:
        raise ConfigError(f"{tls_fields.where}cert_file: required when key_file is set")
    for name in ("ca_file", "cert_file", "key_file"):
        path = getattr(tls, name)
        if path is not None and not path.is_file():
            raise ConfigError(f"{tls_fields.where}{name}: {path} does not exist or is not a file")
    try:
        ssl_context(tls)
    except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
        raise ConfigError(f"{tls_fields.where}cert_file: cannot load the certificate and key "
                          f"({exc}); give PEM files, the key unencrypted") from None
    return tls


def _remote_write(p: _Fields, base_dir: Path | None) -> RemoteWriteConfig:
    p.only("url", "timeout", "basic_auth", "authorization", "bearer_token", "bearer_token_file",
           "oauth2", "sigv4", "auth", "tls", "headers", "max_samples_per_send", "backfill_rate_limit", "order", "min_backoff",
           "max_backoff", "max_retry_duration", "reconnect_jitter")
    url = p.required_str("url")
    if not re.match(r"^https?://[^/\s]+", url):
        raise ConfigError(f"{p.where}url: expected an http(s) URL such as "
                          f"http://prometheus:9090/api/v1/write, got {without_userinfo(url)!r}")
    tls = _tls(p.section("tls"))
    auth = _other_auth(p, tls) or _auth(p, url)
    url = without_userinfo(url)  # its credentials are in auth: never logged or shown
    headers = p.data.get("headers") or {}
    if not isinstance(headers, Mapping) or not all(isinstance(v, str) for v in headers.values()):
        raise ConfigError(f"{p.where}headers: expected a mapping of header name to string value")
    reserved = reserved_header(headers)
    if reserved is not None:
        raise ConfigError(f"{p.where}headers.{reserved[0]}: {reserved[1]}; remove it")
    rate: float | None = RemoteWriteConfig.backfill_rate_limit
    if "backfill_rate_limit" in p.data:
        raw = p.data["backfill_rate_limit"]
        if raw is None:
            rate = None
        elif isinstance(raw, bool) or not isinstance(raw, int | float) or raw <= 0:
            raise ConfigError(f"{p.where}backfill_rate_limit: expected samples per second such as "
                              f"20000, or null for no limit, got {raw!r}")
        else:
            rate = float(raw)
    min_backoff = p.duration("min_backoff", RemoteWriteConfig.min_backoff)
    max_backoff = p.duration("max_backoff", RemoteWriteConfig.max_backoff)
    if max_backoff < min_backoff:
        raise ConfigError(f"{p.where}max_backoff: must be at least min_backoff ({min_backoff}s)")
    return RemoteWriteConfig(
        url=url,
        timeout=p.duration("timeout", RemoteWriteConfig.timeout),
        auth=auth,
        tls=tls,
        headers={str(k): v for k, v in headers.items()},
        max_samples_per_send=p.positive_int("max_samples_per_send", RemoteWriteConfig.max_samples_per_send),
        backfill_rate_limit=rate,
        order=p.choice("order", ("fifo", "live_first"), "fifo"),  # type: ignore[arg-type]
        min_backoff=min_backoff,
        max_backoff=max_backoff,
        max_retry_duration=p.optional_duration("max_retry_duration", None),
        reconnect_jitter=_reconnect_jitter(p),
    )


def _reconnect_jitter(p: _Fields) -> float:
    raw = p.data.get("reconnect_jitter")
    if raw is None or (not isinstance(raw, bool) and raw in (0, "0", "0s")):
        return 0.0
    seconds = p.duration("reconnect_jitter", 0.0)
    if seconds > 3600:
        raise ConfigError(f"{p.where}reconnect_jitter: at most 1h (the backlog's start is spread "
                          f"over this window), got {raw!r}; 30s to a few minutes suits a fleet")
    return seconds
