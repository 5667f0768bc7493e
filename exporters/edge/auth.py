"""How a remote_write request is authenticated: Prometheus's schemes, and plugins'.

Every scheme is a ``RequestAuth``: ``authorize(request)`` adds the credentials
to one request, ``fingerprint()`` identifies the credentials it would use now
(changes when a file is rotated, a config reloaded), ``renew()`` is asked
after a 401/403 whether it can obtain fresh credentials on its own (a cached
OAuth2 token: yes, once). When it cannot, the client holds the samples and
sends nothing until the fingerprint changes: a receiver that refuses the
credentials is never asked again with the same ones (``remote_write``).

* ``Auth``: ``basic_auth`` and ``authorization`` (bearer), inline or from files
  read at each send (``remote_write.Auth`` re-exports it);
* ``OAuth2ClientCredentials``: ``oauth2`` (RFC 6749 4.4), the token cached and
  fetched again before it expires;
* ``SigV4``: ``sigv4`` (AWS Signature Version 4 through botocore, for Amazon
  Managed Service for Prometheus; ``pip install modelmon[aws]``);
* a plugin's scheme: ``auth: {provider: <name>, ...}`` calls the factory
  registered with ``modelmon_register_remote_write_auth``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import ssl
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

log = logging.getLogger(__name__)


@dataclass
class AuthRequest:
    """One request to authenticate: a scheme adds headers (SigV4 signs all of it)."""

    method: str
    url: str
    headers: dict[str, str]
    body: bytes


class CredentialsUnavailable(Exception):
    """The credentials cannot be had right now (a token endpoint down, a file
    unreadable): the request is retried with backoff."""


class CredentialsRefused(Exception):
    """The credentials are wrong (a token endpoint answered invalid_client):
    the samples are held until the credentials change."""


@runtime_checkable
class RequestAuth(Protocol):
    """An authentication scheme of remote_write requests (see the module docstring)."""

    @property
    def field_name(self) -> str:
        """The config field to fix when the receiver refuses the credentials."""

    def authorize(self, request: AuthRequest) -> None:
        """Add credentials to ``request.headers``; raise ``CredentialsUnavailable``
        or ``CredentialsRefused``."""

    def fingerprint(self) -> bytes:
        """Identifies the credentials ``authorize`` would use now."""

    def renew(self) -> bool:
        """After a 401/403: True when fresh credentials will be used next (a
        cached token dropped); False when only a change of configuration helps."""


def _digest(*parts: object) -> bytes:
    return hashlib.sha256(repr(parts).encode()).digest()


def _read_secret(path: Path, field_name: str, strip: bool = True) -> str:
    try:
        text = path.read_text()
    except OSError as exc:
        raise CredentialsUnavailable(f"{field_name}: cannot read {path} ({exc.strerror})") from None
    return text.strip() if strip else text.rstrip("\n")


@dataclass(frozen=True)
class Auth:
    """``basic_auth`` or ``authorization`` credentials, read from their files at
    each send so a rotated secret is picked up. Secrets stay out of ``repr``."""

    username: str | None = None
    password: str | None = field(default=None, repr=False)
    password_file: Path | None = None
    bearer_token: str | None = field(default=None, repr=False)
    bearer_token_file: Path | None = None
    scheme: str = "Bearer"  # the Authorization type of the token (Prometheus's authorization.type)

    @property
    def field_name(self) -> str:
        if self.username is not None:
            return "remote_write.basic_auth"
        return "remote_write.authorization"

    def apply(self, headers: dict[str, str]) -> tuple[str, str] | None:
        """Set the bearer header; returns (user, password) for Basic, or None.
        (The interface before ``authorize``; kept for callers of 0.x.)"""
        token = self.bearer_token
        if self.bearer_token_file is not None:
            token = self.bearer_token_file.read_text().strip()
        if token:
            headers["Authorization"] = f"{self.scheme} {token}"
        if self.username is None:
            return None
        password = self.password or ""
        if self.password_file is not None:
            password = self.password_file.read_text().rstrip("\n")
        return (self.username, password)

    def authorize(self, request: AuthRequest) -> None:
        try:
            basic = self.apply(request.headers)
        except OSError as exc:
            raise CredentialsUnavailable(
                f"{self.field_name}: cannot read the credentials file ({exc})") from None
        if basic is not None:
            token = base64.b64encode(f"{basic[0]}:{basic[1]}".encode()).decode()
            request.headers["Authorization"] = f"Basic {token}"

    def fingerprint(self) -> bytes:
        headers: dict[str, str] = {}
        try:
            basic = self.apply(headers)
        except OSError:
            return b"unreadable"
        return _digest(basic, headers.get("Authorization"))

    def renew(self) -> bool:
        return False


class OAuth2ClientCredentials:
    """OAuth 2.0 client credentials grant (RFC 6749 section 4.4), like Prometheus's
    ``oauth2``: the token is fetched from ``token_url`` (client authenticated
    with HTTP Basic, section 2.3.1), cached, and fetched again once less than
    ``refresh_margin`` of its lifetime is left (a fifth of it, at most 60 s)."""

    field_name = "remote_write.oauth2"

    def __init__(self, *, client_id: str, token_url: str, client_secret: str | None = None,
                 client_secret_file: Path | None = None, scopes: tuple[str, ...] = (),
                 endpoint_params: Mapping[str, str] | None = None, timeout: float = 30.0,
                 ssl_context: ssl.SSLContext | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.client_id = client_id
        self.token_url = token_url
        self._secret = client_secret
        self.client_secret_file = client_secret_file
        self.scopes = scopes
        self.endpoint_params = dict(endpoint_params or {})
        self.timeout = timeout
        self._ssl = ssl_context
        self._clock = clock
        self._lock = threading.Lock()
        self._token: tuple[str, str] | None = None  # (type, access token)
        self._refresh_at = 0.0
        self._fresh = False  # the cached token was never used yet
        self.fetched = 0  # tokens obtained (for status and tests)

    def __repr__(self) -> str:
        return (f"OAuth2ClientCredentials(client_id={self.client_id!r}, token_url="
                f"{self.token_url!r}, scopes={self.scopes!r})")

    def _client_secret(self) -> str:
        if self.client_secret_file is not None:
            return _read_secret(self.client_secret_file, "remote_write.oauth2.client_secret_file")
        return self._secret or ""

    def authorize(self, request: AuthRequest) -> None:
        with self._lock:
            if self._token is None or self._clock() >= self._refresh_at:
                self._fetch()
            else:
                self._fresh = False
            assert self._token is not None
            kind, token = self._token
        request.headers["Authorization"] = f"{kind} {token}"

    def _fetch(self) -> None:
        form = {"grant_type": "client_credentials", **self.endpoint_params}
        if self.scopes:
            form["scope"] = " ".join(self.scopes)
        quote = urllib.parse.quote
        basic = base64.b64encode(
            f"{quote(self.client_id, safe='')}:{quote(self._client_secret(), safe='')}".encode())
        request = urllib.request.Request(
            self.token_url, data=urllib.parse.urlencode(form).encode(), method="POST",
            headers={"Authorization": f"Basic {basic.decode()}", "Accept": "application/json",
                     "Content-Type": "application/x-www-form-urlencoded"})
        started = self._clock()
        try:
            with urllib.request.urlopen(request, timeout=self.timeout, context=self._ssl) as resp:
                answer = json.loads(resp.read(1 << 20))
        except urllib.error.HTTPError as exc:
            detail = exc.read(2000).decode("utf-8", "replace")
            if exc.code in (400, 401, 403):
                # RFC 6749 5.2: invalid_client, invalid_scope, unauthorized_client...
                raise CredentialsRefused(
                    f"remote_write.oauth2: the token endpoint {self.token_url} refused the "
                    f"client credentials (HTTP {exc.code}: {detail[:200]}); fix client_id, "
                    "client_secret[_file] or scopes") from None
            raise CredentialsUnavailable(
                f"remote_write.oauth2: token endpoint {self.token_url} answered HTTP "
                f"{exc.code}") from None
        except (OSError, ValueError) as exc:
            raise CredentialsUnavailable(
                f"remote_write.oauth2: token endpoint {self.token_url}: {exc}") from None
        token = answer.get("access_token") if isinstance(answer, dict) else None
        if not isinstance(token, str) or not token:
            raise CredentialsUnavailable(
                f"remote_write.oauth2: token endpoint {self.token_url} answered without an "
                "access_token")
        kind = str(answer.get("token_type") or "Bearer")
        kind = "Bearer" if kind.lower() == "bearer" else kind
        lifetime = answer.get("expires_in")
        if isinstance(lifetime, str) and lifetime.isdigit():
            lifetime = int(lifetime)
        if isinstance(lifetime, bool) or not isinstance(lifetime, int | float) or lifetime <= 0:
            lifetime = 3600.0  # RFC 6749 5.1: expires_in is optional
        self._token = (kind, token)
        self._refresh_at = started + lifetime - min(60.0, lifetime / 5)
        self._fresh = True
        self.fetched += 1

    def fingerprint(self) -> bytes:
        try:
            secret = self._client_secret()
        except CredentialsUnavailable:
            secret = "unreadable"
        return _digest(self.client_id, secret, self.token_url, self.scopes,
                       sorted(self.endpoint_params.items()))

    def renew(self) -> bool:
        """A token the receiver refuses may have been revoked or expired early:
        drop it and fetch another, unless it was just fetched."""
        with self._lock:
            if self._token is None:
                return True
            if self._fresh:
                return False
            self._token = None
            return True


class SigV4:
    """AWS Signature Version 4 (Prometheus's ``sigv4``), signed by botocore.

    Credentials: ``access_key`` + ``secret_key``, else ``profile`` or the
    default chain (environment, shared files, instance role); with
    ``role_arn`` the role is assumed through STS and refreshed by botocore
    before it expires."""

    field_name = "remote_write.sigv4"

    def __init__(self, *, region: str, access_key: str | None = None,
                 secret_key: str | None = None, profile: str | None = None,
                 role_arn: str | None = None, service: str = "aps") -> None:
        try:
            import botocore.session  # noqa: F401
        except ImportError:
            raise ValueError("sigv4: needs botocore; pip install 'modelmon[aws]'") from None
        self.region, self.service = region, service
        self.profile, self.role_arn = profile, role_arn
        self._access_key, self._secret_key = access_key, secret_key
        self._lock = threading.Lock()
        self._credentials: Any = None

    def __repr__(self) -> str:
        return (f"SigV4(region={self.region!r}, profile={self.profile!r}, "
                f"role_arn={self.role_arn!r}, service={self.service!r})")

    def _resolve(self) -> Any:
        import botocore.credentials
        import botocore.session

        if self._access_key:
            base = botocore.credentials.Credentials(self._access_key, self._secret_key or "")
            session = botocore.session.get_session()
        else:
            session = botocore.session.Session(profile=self.profile)
            base = session.get_credentials()
        if base is None:
            raise CredentialsRefused(
                "remote_write.sigv4: no AWS credentials found; set access_key and secret_key, "
                "a profile, or the environment (AWS_ACCESS_KEY_ID...)")
        if self.role_arn is None:
            return base
        return self._assumed(session, base)

    def _assumed(self, session: Any, base: Any) -> Any:
        import botocore.credentials

        frozen = base.get_frozen_credentials()
        sts = session.create_client("sts", region_name=self.region,
                                    aws_access_key_id=frozen.access_key,
                                    aws_secret_access_key=frozen.secret_key,
                                    aws_session_token=frozen.token)

        def refresh() -> dict[str, str]:
            role = sts.assume_role(RoleArn=self.role_arn, RoleSessionName="modelmon-edge")
            creds = role["Credentials"]
            return {"access_key": creds["AccessKeyId"], "secret_key": creds["SecretAccessKey"],
                    "token": creds["SessionToken"],
                    "expiry_time": creds["Expiration"].isoformat()}

        return botocore.credentials.RefreshableCredentials.create_from_metadata(
            refresh(), refresh, "assume-role")

    def _current(self) -> Any:
        with self._lock:
            if self._credentials is None:
                try:
                    self._credentials = self._resolve()
                except (CredentialsRefused, CredentialsUnavailable):
                    raise
                except Exception as exc:  # botocore: STS down, a bad profile...
                    raise CredentialsUnavailable(f"remote_write.sigv4: {exc}") from None
            return self._credentials

    def authorize(self, request: AuthRequest) -> None:
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        aws = AWSRequest(method=request.method, url=request.url, data=request.body,
                         headers=dict(request.headers))
        SigV4Auth(self._current(), self.service, self.region).add_auth(aws)
        for name in ("Authorization", "X-Amz-Date", "X-Amz-Security-Token"):
            if name in aws.headers:
                request.headers[name] = aws.headers[name]

    def fingerprint(self) -> bytes:
        """Resolved again (the shared credentials file may have been rotated)."""
        with self._lock:
            self._credentials = None
        try:
            frozen = self._current().get_frozen_credentials()
        except (CredentialsRefused, CredentialsUnavailable):
            return b"unavailable"
        return _digest(frozen.access_key, frozen.secret_key, frozen.token)

    def renew(self) -> bool:
        return False


AuthFactory = Callable[[Mapping[str, Any]], RequestAuth]


def plugin_auth(settings: Mapping[str, Any]) -> RequestAuth:
    """The scheme of ``auth: {provider: <name>, ...}``, from the plugin that
    registered ``<name>``; ValueError naming the field when it cannot be made."""
    from modelmon.plugin_manager import get_plugin_manager

    provider = settings.get("provider")
    factories: dict[str, AuthFactory] = {}

    def register(name: str, factory: AuthFactory) -> None:
        factories[name] = factory

    get_plugin_manager().hook.modelmon_register_remote_write_auth(register=register)
    if not isinstance(provider, str) or provider not in factories:
        known = ", ".join(sorted(factories)) or "none installed"
        raise ValueError(f"auth.provider: unknown provider {provider!r}; known: {known}")
    try:
        made = factories[provider]({k: v for k, v in settings.items() if k != "provider"})
    except ValueError as exc:
        raise ValueError(f"auth: {exc}") from None
    if not isinstance(made, RequestAuth):
        raise ValueError(f"auth.provider: {provider!r} returned {type(made).__name__}, which "
                         "lacks authorize/fingerprint/renew/field_name")
    return made
