"""The ``logs:`` section of the modelmon config file -> LogShipper options.

Example::

    logs:
      sink: elasticsearch            # elasticsearch | logstash_tcp | logstash_http | file | gelf | s3
                                     # | cloudwatch
      service_name: fraud-api
      environment: production
      spool_dir: /var/lib/modelmon/logs
      spool:
        max_bytes: 512MiB
        max_age: 7d
        full_policy: drop_oldest     # drop_oldest | drop_newest | block
        fsync: interval              # interval | always | never
        fsync_interval: 1s
        block_timeout: 5s
        encryption:                  # optional: AES-GCM at rest (docs/security.md)
          key_env: MODELMON_SPOOL_KEY  # or key_file: ..., or kms: {provider: ...}
          previous_keys: []          # older keys: still decrypt, never encrypt
      batch_size: 1000
      batch_bytes: 5MiB
      linger: 0s                     # how long a short batch waits to fill (s3 sink: 60s)
      backoff: {initial: 500ms, max: 60s}
      log_inputs: false
      log_outputs: false
      max_payload_chars: 1024
      correlation_header: X-Request-ID
      redact: {ip_addresses: true, drop_fields: [user.password], hash_fields: [user.id]}
                                     # on by default; only {enabled: false} switches it off
      elasticsearch:                 # options of the sink named in `sink:`
        url: https://es.example:9200 # or hosts: [...], or cloud_id: ...
        api_key_file: /run/secrets/es-api-key   # or api_key, or username + password[_file]
        ca_file: /etc/ssl/es-ca.pem  # (or ca_certs) the CA that signed the cluster's certificate
        cert_file: /etc/ssl/modelmon.pem  # a client certificate, when the cluster requires one
        key_file: /etc/ssl/modelmon.key
        index: logs-modelmon-default
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from modelmon.config import ConfigError
from modelmon.exporters.logs.sinks import Secret, check_client_cert, split_userinfo
from modelmon.units import parse_duration, parse_size

_TOP = {"sink", "service_name", "environment", "spool_dir", "spool", "batch_size", "batch_bytes",
        "linger",
        "backoff", "log_inputs", "log_outputs", "max_payload_chars", "correlation_header",
        "redact", "prefix"}
_SPOOL = {"max_bytes", "max_age", "full_policy", "fsync", "fsync_interval", "block_timeout",
          "encryption"}
_SINK_SECTIONS = {"elasticsearch", "logstash_tcp", "logstash_http", "file", "gelf", "s3",
                  "cloudwatch"}


def correlation_header(section: Mapping[str, Any] | None) -> str:
    from modelmon.exporters.logs.correlation import DEFAULT_HEADER

    return str((section or {}).get("correlation_header") or DEFAULT_HEADER)


def redact_settings(section: Mapping[str, Any]) -> tuple[bool, Mapping[str, Any]]:
    """(enabled, the redactor's options) from a ``logs:`` section.

    Redaction is on unless the section says ``redact: {enabled: false}``
    exactly; anything else that is not a mapping, or an ``enabled`` that is
    not a boolean, is an error rather than a guess, so PII is never shipped
    unredacted by accident (``redact: false`` or ``enabled: "no"`` refuse to
    start).
    """
    redact = section.get("redact")
    if redact is None:
        return True, {}
    if not isinstance(redact, Mapping):
        raise ConfigError(
            f"logs.redact: expected a mapping such as {{ip_addresses: true}}, got {redact!r}; "
            "to ship PII unredacted write redact: {enabled: false}"
        )
    enabled = redact.get("enabled", True)
    if not isinstance(enabled, bool):
        raise ConfigError(f"logs.redact.enabled: expected true or false, got {enabled!r}")
    return enabled, redact


def shipper_options(section: Mapping[str, Any], base_dir: Path | None = None) -> dict[str, Any]:
    """LogShipper keyword arguments; errors name the field and the fix."""
    if not isinstance(section, Mapping):
        raise ConfigError("logs: expected a mapping with at least 'sink'")
    sink = str(section.get("sink", "file"))
    unknown = set(section) - _TOP - _SINK_SECTIONS - {sink}
    if unknown:
        raise ConfigError(
            f"logs: unknown key(s) {', '.join(sorted(unknown))}; known keys are "
            f"{', '.join(sorted(_TOP | _SINK_SECTIONS))} (sink options go under logs.<sink>)"
        )
    try:
        opts: dict[str, Any] = {"sink": sink}
        for key in ("service_name", "environment", "prefix"):
            if section.get(key) is not None:
                opts[key] = str(section[key])
        if section.get("spool_dir"):
            opts["spool_dir"] = _path(section["spool_dir"], base_dir)
        spool = section.get("spool") or {}
        if not isinstance(spool, Mapping) or set(spool) - _SPOOL:
            raise ConfigError(
                f"logs.spool: expected a mapping with keys among {', '.join(sorted(_SPOOL))}"
            )
        if "max_bytes" in spool:
            opts["max_bytes"] = parse_size(spool["max_bytes"], "logs.spool.max_bytes")
        if "max_age" in spool:
            opts["max_age"] = (None if spool["max_age"] in (None, "none", "off")
                               else parse_duration(spool["max_age"], "logs.spool.max_age"))
        for key, allowed in (("full_policy", ("drop_oldest", "drop_newest", "block")),
                             ("fsync", ("interval", "always", "never"))):
            if key in spool:
                if spool[key] not in allowed:
                    raise ConfigError(
                        f"logs.spool.{key}: expected one of {', '.join(allowed)}, got {spool[key]!r}"
                    )
                opts[key] = spool[key]
        for key in ("fsync_interval", "block_timeout"):
            if spool.get(key) is not None:
                opts[key] = parse_duration(spool[key], f"logs.spool.{key}")
        if spool.get("encryption") is not None:
            from modelmon.spool.keys import encryption_section

            # Checked here, keys read when the shipper opens its spool.
            opts["encryption"] = encryption_section(spool["encryption"],
                                                    "logs.spool.encryption", base_dir)
        if "batch_size" in section:
            value = section["batch_size"]
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"logs.batch_size: expected a positive integer, got {value!r}")
            opts["batch_size"] = value
        if "batch_bytes" in section:
            opts["batch_bytes"] = parse_size(section["batch_bytes"], "logs.batch_bytes")
        if section.get("linger") is not None:
            opts["linger"] = parse_duration(section["linger"], "logs.linger")
        backoff = section.get("backoff") or {}
        if not isinstance(backoff, Mapping) or set(backoff) - {"initial", "max"}:
            raise ConfigError("logs.backoff: expected a mapping with 'initial' and/or 'max'")
        if "initial" in backoff:
            opts["backoff_initial"] = parse_duration(backoff["initial"], "logs.backoff.initial")
        if "max" in backoff:
            opts["backoff_max"] = parse_duration(backoff["max"], "logs.backoff.max")
        for key in ("log_inputs", "log_outputs"):
            if key in section:
                if not isinstance(section[key], bool):
                    raise ConfigError(f"logs.{key}: expected true or false, got {section[key]!r}")
                opts[key] = section[key]
        if "max_payload_chars" in section:
            value = section["max_payload_chars"]
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(
                    f"logs.max_payload_chars: expected a positive integer, got {value!r}")
            opts["max_payload_chars"] = value
        _, redact = redact_settings(section)
        from modelmon.exporters.logs.redaction import Redactor

        Redactor.from_config(redact)  # its errors name logs.redact.<key>
    except ValueError as exc:
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(str(exc)) from None
    opts["processor_config"] = hide_secrets(section)
    sink_options = section.get(sink) or {}
    if not isinstance(sink_options, Mapping):
        raise ConfigError(f"logs.{sink}: expected a mapping of options for the {sink} sink")
    opts.update(_sink_options(sink, dict(sink_options), base_dir))
    return opts


_SECRET_KEYS = ("api_key", "password", "secret_access_key", "session_token")
_FILE_KEYS = ("ca_certs", "ca_file", "cert_file", "key_file")


def _sink_options(sink: str, options: dict[str, Any], base_dir: Path | None) -> dict[str, Any]:
    # Secrets may live in files (Kubernetes secrets, systemd credentials), read
    # once here; either way they become Secrets, which no repr shows.
    for key in _SECRET_KEYS:
        file_key = f"{key}_file"
        if options.get(file_key) is not None:
            if options.get(key) is not None:
                raise ConfigError(f"logs.{sink}.{file_key}: set {key} or {file_key}, not both")
            path = _path(options.pop(file_key), base_dir)
            try:
                options[key] = Secret(path.read_text().strip())
            except OSError as exc:
                raise ConfigError(f"logs.{sink}.{file_key}: cannot read {path} ({exc.strerror})"
                                  ) from None
        elif options.get(key) is not None:
            options[key] = Secret(str(options[key]))
        options.pop(file_key, None)
    _move_url_credentials(sink, options)
    for key in (*_FILE_KEYS, "path"):
        if options.get(key) is not None:
            options[key] = str(_path(options[key], base_dir))
    for key in _FILE_KEYS:  # TLS files: a missing one fails at start, named
        if options.get(key) is not None and not Path(options[key]).is_file():
            raise ConfigError(f"logs.{sink}.{key}: {options[key]} does not exist or is not a file")
    if options.get("cert_file") is not None:
        try:
            check_client_cert(options["cert_file"], options.get("key_file"))
        except ValueError as exc:
            raise ConfigError(f"logs.{sink}.cert_file: {exc}") from None
    return options


def _move_url_credentials(sink: str, options: dict[str, Any]) -> None:
    """``user:password@`` of ``url``/``hosts`` become username and a Secret password."""
    for key in ("url", "hosts"):
        urls = options.get(key)
        if isinstance(urls, str):
            given, many = [urls], False
        elif isinstance(urls, list):
            given, many = urls, True
        else:
            continue
        clean = []
        for url in given:
            bare, user, password = split_userinfo(str(url))
            clean.append(bare)
            if user is None:
                continue
            if options.get("username") not in (None, user) or options.get("api_key") is not None:
                raise ConfigError(f"logs.{sink}.{key}: has user:password@ and other credentials; "
                                  "keep one")
            options["username"], options["password"] = user, Secret(password or "")
        if clean:
            options[key] = clean if many else clean[0]


def hide_secrets(section: Mapping[str, Any]) -> dict[str, Any]:
    """The ``logs:`` section with every sink's inline secret (and URL with
    credentials) made a Secret: the same strings, but no repr shows them."""
    hidden = dict(section)
    for name in _SINK_SECTIONS:
        sink = hidden.get(name)
        if isinstance(sink, Mapping):
            hidden[name] = {k: Secret(str(v)) if (k in _SECRET_KEYS and v is not None)
                            or (k in ("url", "hosts") and "@" in str(v)) else v
                            for k, v in sink.items()}
    return hidden


def check_spool_dir(section: Mapping[str, Any], base_dir: Path | None = None) -> None:
    """Create the spool directory (owner-only) and write a file in it, or raise
    a ConfigError naming ``logs.spool_dir`` and the fix."""
    import os
    import tempfile

    from modelmon.exporters.logs.shipper import default_spool_dir, spool_dir_error
    from modelmon.spool import SpoolUnavailable
    from modelmon.spool.files import make_private_dir

    spool_dir = section.get("spool_dir")
    root = _path(spool_dir, base_dir) if spool_dir else default_spool_dir()
    try:
        make_private_dir(root)
        fd, probe = tempfile.mkstemp(dir=root, prefix=".write-check-")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise ConfigError(spool_dir_error(SpoolUnavailable(root, exc))) from None
    _check_spool_keys(section, root, base_dir)


def _check_spool_keys(section: Mapping[str, Any], root: Path, base_dir: Path | None) -> None:
    """Every slot's pending records must open with the configured keys: read
    them before the workers start, so a missing key stops the server with the
    field's name instead of a traceback in every worker."""
    import sqlite3

    from modelmon.spool.crypto import SpoolKeyMismatch, check_store_keys
    from modelmon.spool.keys import cipher_from_config, encryption_section

    spool = section.get("spool") or {}
    field = "logs.spool.encryption"
    cipher = cipher_from_config(encryption_section(spool.get("encryption"), field, base_dir),
                                field)
    for db in sorted(root.glob("slot-*/spool.db")):
        try:
            conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
            try:
                check_store_keys(conn, cipher, db.parent)
            finally:
                conn.close()
        except sqlite3.Error:
            continue  # unreadable: the spool salvages it when it opens
        except SpoolKeyMismatch as exc:
            raise ConfigError(f"logs.spool.encryption: {exc}") from None


def _path(value: Any, base_dir: Path | None) -> Path:
    path = Path(str(value)).expanduser()
    return path if path.is_absolute() or base_dir is None else base_dir / path


def check_sink(section: Mapping[str, Any], base_dir: Path | None = None) -> None:
    """Build the configured sink once and try the spool directory, so a bad
    sink name or option, or a spool directory that cannot be written, fails
    when a server starts (naming ``logs.<sink>``, ``logs.spool_dir``), not
    later in a worker."""
    from modelmon.exporters.logs.registry import sink_factories

    check_spool_dir(section, base_dir)
    sink = str(section.get("sink", "file"))
    factories = sink_factories()
    if sink not in factories:
        raise ConfigError(
            f"logs.sink: unknown sink {sink!r}; known sinks are {', '.join(sorted(factories))}"
        )
    options = _sink_options(sink, dict(section.get(sink) or {}), base_dir)
    if sink == "file" and "path" not in options:
        return  # the default path is under the spool directory
    try:
        made = factories[sink](options)
    except TypeError as exc:  # an option the sink does not take
        raise ConfigError(f"logs.{sink}: {exc}; see docs/logging.md for its options") from None
    except ValueError as exc:
        raise ConfigError(f"logs.{sink}.{exc}") from None
    close = getattr(made, "close", None)
    if callable(close):
        close()


def sink_options(sink: str, section: Mapping[str, Any], base_dir: Path | None = None) -> dict[str, Any]:
    """The options of ``logs.<sink>`` as its sink takes them: secrets read from
    their files, paths resolved against the config file's directory."""
    options = section.get(sink) or {}
    if not isinstance(options, Mapping):
        raise ConfigError(f"logs.{sink}: expected a mapping of options for the {sink} sink")
    return _sink_options(sink, dict(options), base_dir)
