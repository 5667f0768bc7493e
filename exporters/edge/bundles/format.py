"""The bundle file: what the cloud builds and a device verifies before applying.

A bundle is a gzip'd tar holding::

    manifest.json        {"format": 1, "version", "created", "files": {path: sha256},
                          "config": {...}, "models": {model: version},
                          "thresholds": path, "profiles": {model: path},
                          "collectors": [name, ...], "plugins": {plugin: {setting: value}}}
    manifest.json.sig    Ed25519 signature of manifest.json's bytes (absent: unsigned)
    rules/...            Prometheus rule files (every file not named otherwise)
    thresholds.yml       the thresholds config of ``modelmon rules build`` (optional)
    profiles/...         reference profiles of edge models (``modelmon profile build``)

The manifest names every other file with its sha256, so the signature over
the manifest covers the whole bundle, and the manifest's own sha256 is the
bundle's identity (``modelmon_edge_config_info{sha256}``). A device reads the
bundle in memory and nothing of it touches disk before every check passed:
the signature, every file's hash, no file more or less than the manifest
says, every rule file's YAML and every rule's PromQL (the device's own
evaluator compiles it), the thresholds (and the edge rule group generated
from them, compiled the same way), every profile (the profile loader), the
collector settings, the config fragment and the model pins. A failed
check raises :class:`BundleRefused` with a short ``reason`` (a counter label)
and a message naming what to fix.
"""

from __future__ import annotations

import glob
import gzip
import hashlib
import io
import json
import re
import tarfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

import yaml

from modelmon.exporters.edge.rules.files import RuleFileError, RuleGroup, parse_rule_groups
from modelmon.units import parse_duration

from .signing import Verifier, sign

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from modelmon.exporters.quality.profile import Profile
    from modelmon.thresholds import ThresholdsConfig

FORMAT = 1
MANIFEST = "manifest.json"
SIGNATURE = "manifest.json.sig"
SOURCE_FILE = "bundle.yml"
# A bundle holds rule files and a few settings: anything this big is not one.
MAX_BUNDLE_BYTES = 16 * 1024**2
# Files in one bundle at most. Read before the signature can be checked, so an
# archive of empty members (each a 512-byte header, gzip'd to a few bytes) would
# otherwise grow the agent by every one of them: 620 kB of it was 100,000 members.
MAX_BUNDLE_FILES = 1000
# Keys of the device's edge config a bundle may set; applied without a restart.
CONFIG_KEYS = ("evaluation_interval", "query_window")
# Bounded label values: they become label values of the info metrics.
_VERSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+:@-]{0,63}")
_MODEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:/@-]{0,127}")
REASONS = ("unreadable", "signature", "checksum", "rules", "config", "thresholds", "profiles",
           "collectors")
# bundle.yml's keys; what is not a setting below is packed as files.
SOURCE_KEYS = ("version", "rules", "models", "thresholds", "profiles", "collectors", "plugins",
               *CONFIG_KEYS)


class BundleRefused(ValueError):
    """A bundle that fails a check; ``reason`` is one of :data:`REASONS`."""

    def __init__(self, reason: str, message: str) -> None:
        assert reason in REASONS, reason
        super().__init__(message)
        self.reason = reason


class BundleSourceError(ValueError):
    """A bundle source directory that cannot be built; the message names the fix."""


@dataclass(frozen=True)
class Bundle:
    version: str
    sha256: str  # of manifest.json: the bundle's identity
    created: float
    signed: bool
    rule_groups: tuple[RuleGroup, ...]
    config: Mapping[str, float] = field(default_factory=dict)  # CONFIG_KEYS, in seconds
    models: Mapping[str, str] = field(default_factory=dict)  # desired model -> version
    data: bytes = field(default=b"", repr=False)  # the bundle file itself
    # The thresholds config, and the edge rule group generated from it (with its prefix).
    thresholds: ThresholdsConfig | None = None
    threshold_groups: tuple[RuleGroup, ...] = ()
    # Reference profiles of edge models: model -> (sha256 of the file, the profile).
    profiles: Mapping[str, tuple[str, Profile]] = field(default_factory=dict)
    # The plugin collectors to run (None: the bundle does not say) and their settings.
    collectors: tuple[str, ...] | None = None
    plugins: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


# -- building (the cloud side) ------------------------------------------------


def build_bundle(source: Path, *, version: str | None = None,
                 key: Ed25519PrivateKey | None = None, created: float | None = None) -> bytes:
    """The bundle file for ``source`` (a directory with ``bundle.yml``).

    ``bundle.yml``::

        version: 2026.12.01-1         # or --version; a label value: letters, digits, _.+:@-
        rules: [rules/*.yml]          # paths or globs inside the directory
        evaluation_interval: 30s      # optional, see CONFIG_KEYS
        models: {fraud-detector: 3.2.0}   # desired model versions on the devices
        thresholds: thresholds.yml    # regenerates the edge rule group on the devices
        profiles: {fraud-detector: profiles/fraud.json}   # reference profiles
        collectors: [system, docker]  # the plugin collectors the devices run
        plugins: {docker: {url: unix:///var/run/docker.sock}}   # their settings

    The rules are checked as the device will check them, so a bundle the
    devices would refuse is never built.
    """
    spec_path = source / SOURCE_FILE
    try:
        spec = yaml.safe_load(spec_path.read_text()) or {}
    except OSError as exc:
        raise BundleSourceError(f"{spec_path}: cannot read it ({exc.strerror}); a bundle "
                                f"directory has a {SOURCE_FILE} (see docs/edge.md)") from None
    except yaml.YAMLError as exc:
        raise BundleSourceError(f"{spec_path}: not valid YAML: {exc}") from None
    if not isinstance(spec, dict):
        raise BundleSourceError(f"{spec_path}: expected a mapping with version, rules, models")
    unknown = sorted(set(map(str, spec)) - set(SOURCE_KEYS))
    if unknown:
        raise BundleSourceError(f"{spec_path}: {unknown[0]}: unknown key; known keys are "
                                f"{', '.join(SOURCE_KEYS)}")
    version = version if version is not None else spec.get("version")
    if not isinstance(version, str | int | float) or isinstance(version, bool):
        raise BundleSourceError(f"{spec_path}: version: required (or pass --version), such as "
                                "2026.12.01-1")
    version = str(version)
    patterns = spec.get("rules") or []
    if not isinstance(patterns, list) or not all(isinstance(p, str) and p for p in patterns):
        raise BundleSourceError(f"{spec_path}: rules: expected a list of paths or globs")
    files: dict[str, bytes] = {}
    root = source.resolve()

    def pack(match: str, key: str) -> str:
        path = Path(match).resolve()
        if not path.is_relative_to(root) or not path.is_file():
            raise BundleSourceError(f"{spec_path}: {key}: {match} is not a file inside {source}")
        name = path.relative_to(root).as_posix()
        files[name] = path.read_bytes()
        return name

    named: dict[str, Any] = {}  # the files that are not rule files, by their manifest key
    thresholds = spec.get("thresholds")
    if thresholds is not None:
        if not isinstance(thresholds, str) or not thresholds:
            raise BundleSourceError(f"{spec_path}: thresholds: expected the path of a "
                                    "thresholds file such as thresholds.yml")
        named["thresholds"] = pack(str(source / thresholds), "thresholds")
    profiles = spec.get("profiles") or {}
    if not isinstance(profiles, dict) or not all(isinstance(v, str) for v in profiles.values()):
        raise BundleSourceError(f"{spec_path}: profiles: expected a mapping of model name to "
                                "the path of its profile.json")
    if profiles:
        named["profiles"] = {str(model): pack(str(source / path), f"profiles.{model}")
                             for model, path in profiles.items()}
    not_rules = {named.get("thresholds"), *named.get("profiles", {}).values()}
    for pattern in patterns:
        matches = sorted(glob.glob(str(source / pattern)))
        if not matches:
            raise BundleSourceError(f"{spec_path}: rules: {pattern!r} matches no file")
        for match in matches:
            if pack(match, "rules") in not_rules:
                raise BundleSourceError(f"{spec_path}: rules: {pattern!r} matches {match}, "
                                        "which is not a rule file (thresholds or a profile)")
    models = spec.get("models") or {}
    if not isinstance(models, dict):
        raise BundleSourceError(f"{spec_path}: models: expected a mapping of model name to "
                                "version")
    for model, pinned in models.items():
        if isinstance(pinned, float):  # YAML reads 3.10 as 3.1
            raise BundleSourceError(f"{spec_path}: models.{model}: quote the version "
                                    f"('{pinned}'): YAML reads an unquoted 3.10 as 3.1")
    manifest = {
        "format": FORMAT,
        "version": version,
        "created": round(time.time() if created is None else created, 3),
        "files": {name: hashlib.sha256(body).hexdigest() for name, body in sorted(files.items())},
        "config": {k: spec[k] for k in CONFIG_KEYS if k in spec},
        "models": {str(m): str(v) if isinstance(v, int) and not isinstance(v, bool) else v
                   for m, v in models.items()},
        **named,
        **{k: spec[k] for k in ("collectors", "plugins") if spec.get(k) is not None},
    }
    manifest_bytes = json.dumps(manifest, indent=2, sort_keys=True).encode() + b"\n"
    members = {MANIFEST: manifest_bytes, **files}
    if key is not None:
        members[SIGNATURE] = sign(key, manifest_bytes)
    if len(members) > MAX_BUNDLE_FILES:
        raise BundleSourceError(f"{spec_path}: {len(files)} files; a bundle holds at most "
                                f"{MAX_BUNDLE_FILES - 2} (merge rule files)")
    data = _tar(members)
    try:  # what the devices will check, here where it can still be fixed
        _check(manifest_bytes, members, None, require_signature=False)
    except BundleRefused as exc:
        raise BundleSourceError(f"{source}: {exc}") from None
    return data


def _tar(members: Mapping[str, bytes]) -> bytes:
    """A reproducible tar.gz: the same members give the same bytes (and ETag)."""
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0) as gz, \
            tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, body in members.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(body), 0o644, 0
            tar.addfile(info, io.BytesIO(body))
    return buf.getvalue()


# -- reading (the device side) ------------------------------------------------


def read_bundle(data: bytes, verifier: Verifier | None, *,
                require_signature: bool = True) -> Bundle:
    """Check ``data`` completely and return it parsed, or raise BundleRefused.

    ``verifier`` checks the signature (``signing.key_verifier`` or
    ``signing.subprocess_verifier``); None accepts unsigned bundles only with
    ``require_signature=False``. A verifier that cannot run raises
    ``signing.VerifierUnavailable``."""
    if len(data) > MAX_BUNDLE_BYTES:
        raise BundleRefused("unreadable", f"{len(data)} bytes, more than a bundle holds "
                            f"({MAX_BUNDLE_BYTES}); is the URL the bundle's?")
    members = _untar(data)
    manifest_bytes = members.get(MANIFEST)
    if manifest_bytes is None:
        raise BundleRefused("unreadable", f"no {MANIFEST} in the archive; build bundles with "
                            "'modelmon edge bundle build'")
    bundle = _check(manifest_bytes, members, verifier, require_signature=require_signature)
    return Bundle(**{**bundle.__dict__, "data": data})


def peek_identity(data: bytes) -> tuple[str | None, str | None]:
    """The version and manifest sha256 a bundle file claims, unchecked, or None:
    what a refusal's log event can name (a refused bundle is not trusted)."""
    try:
        manifest_bytes = _untar(data).get(MANIFEST)
        if manifest_bytes is None:
            return None, None
        manifest = json.loads(manifest_bytes)
    except (BundleRefused, ValueError):
        return None, None
    version = manifest.get("version") if isinstance(manifest, dict) else None
    return (version if isinstance(version, str) and _VERSION.fullmatch(version) else None,
            hashlib.sha256(manifest_bytes).hexdigest())


def _untar(data: bytes) -> dict[str, bytes]:
    members: dict[str, bytes] = {}
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            total = 0
            for info in tar:
                name = info.name
                pure = PurePosixPath(name)
                if not info.isfile() or pure.is_absolute() or ".." in pure.parts:
                    raise BundleRefused("unreadable", f"archive member {name!r} is not a plain "
                                        "file with a relative path")
                if name in members:
                    raise BundleRefused("unreadable", f"archive member {name!r} appears twice")
                if len(members) >= MAX_BUNDLE_FILES:
                    raise BundleRefused("unreadable", "the archive holds more than "
                                        f"{MAX_BUNDLE_FILES} files")
                total += info.size
                if total > MAX_BUNDLE_BYTES:
                    raise BundleRefused("unreadable", "the archive unpacks to more than "
                                        f"{MAX_BUNDLE_BYTES} bytes")
                f = tar.extractfile(info)
                assert f is not None
                members[name] = f.read()
    except (tarfile.TarError, OSError, EOFError, gzip.BadGzipFile) as exc:
        raise BundleRefused("unreadable", f"not a bundle (tar.gz): {exc}") from None
    return members


def _check(manifest_bytes: bytes, members: Mapping[str, bytes],
           verifier: Verifier | None, *, require_signature: bool) -> Bundle:
    signature = members.get(SIGNATURE)
    if verifier is not None:
        if signature is None:
            raise BundleRefused("signature", "the bundle is not signed and this device "
                                "requires signatures (bundle.public_key); build it with --key")
        if not verifier(signature, manifest_bytes):
            raise BundleRefused("signature", "the signature does not match bundle.public_key: "
                                "the bundle was changed after signing, or signed with another "
                                "key")
    elif require_signature:
        raise BundleRefused("signature", "no public key to verify with; set bundle.public_key "
                            "or bundle.allow_unsigned: true")
    try:
        manifest = json.loads(manifest_bytes)
    except ValueError as exc:
        raise BundleRefused("unreadable", f"{MANIFEST} is not JSON: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BundleRefused("unreadable", f"{MANIFEST}: format {FORMAT} expected; a newer "
                            "modelmon built it?")
    version = manifest.get("version")
    if not isinstance(version, str) or not _VERSION.fullmatch(version):
        raise BundleRefused("config", f"version {version!r}: use up to 64 letters, digits and "
                            "_.+:@- (it becomes a label value)")
    created = manifest.get("created")
    if not isinstance(created, int | float) or isinstance(created, bool):
        raise BundleRefused("unreadable", f"{MANIFEST}: created is not a timestamp")
    listed = manifest.get("files")
    if not isinstance(listed, dict):
        raise BundleRefused("unreadable", f"{MANIFEST}: files is not a mapping")
    present = set(members) - {MANIFEST, SIGNATURE}
    if present != set(listed):
        extra, missing = sorted(present - set(listed)), sorted(set(listed) - present)
        raise BundleRefused("checksum", f"files not as the manifest lists: extra {extra}, "
                            f"missing {missing}")
    for name in sorted(listed):
        if hashlib.sha256(members[name]).hexdigest() != listed[name]:
            raise BundleRefused("checksum", f"{name}: its sha256 differs from the manifest's "
                                "(damaged or changed after the bundle was built)")
    thresholds_file = manifest.get("thresholds")
    profile_files = manifest.get("profiles") or {}
    if thresholds_file is not None and (not isinstance(thresholds_file, str)
                                        or thresholds_file not in listed):
        raise BundleRefused("thresholds", f"bundle {version}: thresholds: {thresholds_file!r} "
                            "is not a file of the bundle")
    if not isinstance(profile_files, dict) or not all(
            isinstance(p, str) and p in listed for p in profile_files.values()):
        raise BundleRefused("profiles", f"bundle {version}: profiles: expected a mapping of "
                            "model name to a file of the bundle")
    not_rules = {thresholds_file, *profile_files.values()}
    groups: list[RuleGroup] = []
    for name in sorted(set(listed) - not_rules):
        body = members[name]
        try:
            text = body.decode()
            # No version in the file name: a group unchanged across versions keeps its
            # alert state (EdgeRuleRunner.replace_groups compares file and name).
            groups += parse_rule_groups(text, f"bundle:{name}")
        except UnicodeDecodeError:
            raise BundleRefused("rules", f"bundle {version}: {name}: not UTF-8 text") from None
        except RuleFileError as exc:
            raise BundleRefused("rules", f"bundle {version}: {exc}") from None
    seen: set[str] = set()
    for group in groups:  # one name space: a device override replaces a group by name
        if group.name in seen:
            raise BundleRefused("rules", f"bundle {version}: group {group.name!r} is defined "
                                "twice")
        seen.add(group.name)
    thresholds, threshold_groups = (None, ()) if thresholds_file is None else \
        _thresholds(members[thresholds_file], thresholds_file, version)
    for group in threshold_groups:
        if group.name in seen:
            raise BundleRefused("thresholds", f"bundle {version}: group {group.name!r} is both "
                                "in a rule file and generated from thresholds; keep one")
    collectors, plugins = _collectors(manifest.get("collectors"), manifest.get("plugins"),
                                      version)
    return Bundle(version=version, sha256=hashlib.sha256(manifest_bytes).hexdigest(),
                  created=float(created), signed=signature is not None,
                  rule_groups=tuple(groups), config=_config(manifest.get("config"), version),
                  models=_models(manifest.get("models"), version),
                  thresholds=thresholds, threshold_groups=threshold_groups,
                  profiles={model: _profile(model, members[name], name, version)
                            for model, name in sorted(profile_files.items())},
                  collectors=collectors, plugins=plugins)


def _thresholds(body: bytes, name: str, version: str
                ) -> tuple[ThresholdsConfig, tuple[RuleGroup, ...]]:
    """The thresholds config and the edge rule group generated from it."""
    from modelmon.config import ConfigError
    from modelmon.thresholds import thresholds_from_mapping

    try:
        config = thresholds_from_mapping(yaml.safe_load(body.decode()) or {})
    except (UnicodeDecodeError, yaml.YAMLError) as exc:
        raise BundleRefused("thresholds", f"bundle {version}: {name}: not YAML text: "
                            f"{exc}") from None
    except ConfigError as exc:
        raise BundleRefused("thresholds", f"bundle {version}: {name}: {exc}") from None
    return config, _edge_groups(config, name, version)


def _edge_groups(config: ThresholdsConfig, name: str, version: str) -> tuple[RuleGroup, ...]:
    """The edge rule file ``modelmon rules build`` writes for ``config``, compiled by
    the device's evaluator as any rule file of the bundle."""
    from modelmon.alerting.render import render_edge_rules

    try:
        # One file name whatever the bundle calls it: the group keeps its alert state
        # across bundles (EdgeRuleRunner.replace_groups compares file and name).
        return tuple(parse_rule_groups(render_edge_rules(config), "bundle:thresholds"))
    except RuleFileError as exc:
        raise BundleRefused("thresholds", f"bundle {version}: the edge rules generated from "
                            f"{name} do not run on the device: {exc}") from None
    except ValueError as exc:  # a value the generator cannot write into a rule
        raise BundleRefused("thresholds", f"bundle {version}: {name}: {exc}") from None


def threshold_groups_for(bundle: Bundle, prefix: str) -> tuple[RuleGroup, ...]:
    """The bundle's generated edge rule group for a device whose metric prefix is
    ``prefix``: the device's own prefix wins over the thresholds file's."""
    import dataclasses

    if bundle.thresholds is None or bundle.thresholds.prefix == prefix:
        return bundle.threshold_groups
    return _edge_groups(dataclasses.replace(bundle.thresholds, prefix=prefix), "thresholds",
                        bundle.version)


def _profile(model: str, body: bytes, name: str, version: str) -> tuple[str, Profile]:
    # Imported here: the profile module loads numpy, which an agent without
    # profiles never needs.
    from modelmon.exporters.quality.profile import Profile, ProfileError

    if not _MODEL.fullmatch(model):
        raise BundleRefused("profiles", f"bundle {version}: profiles: {model!r} is not a model "
                            "name (letters, digits, _.:/@-)")
    try:
        profile = Profile.from_dict(json.loads(body), f"bundle {version}: {name}")
    except (UnicodeDecodeError, ValueError) as exc:  # ProfileError is a ValueError
        message = str(exc) if isinstance(exc, ProfileError) else \
            f"bundle {version}: {name}: not a JSON profile ({exc})"
        raise BundleRefused("profiles", message) from None
    if profile.model and profile.model != model:
        raise BundleRefused("profiles", f"bundle {version}: profiles.{model}: {name} is the "
                            f"profile of model {profile.model!r}; give each model its own")
    return hashlib.sha256(body).hexdigest(), profile


_COLLECTOR = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def _collectors(raw: Any, plugins: Any, version: str
                ) -> tuple[tuple[str, ...] | None, dict[str, dict[str, Any]]]:
    """The collector list and per-plugin settings; which names exist is the
    device's to say (its installed plugins), when it applies the bundle."""
    if raw is not None and (not isinstance(raw, list) or not all(
            isinstance(c, str) and _COLLECTOR.fullmatch(c) for c in raw)):
        raise BundleRefused("collectors", f"bundle {version}: collectors: expected a list of "
                            f"collector names such as [system, docker], got {raw!r}")
    if plugins is None:
        plugins = {}
    if not isinstance(plugins, dict) or not all(
            isinstance(k, str) and isinstance(v, dict) for k, v in plugins.items()):
        raise BundleRefused("collectors", f"bundle {version}: plugins: expected a mapping of "
                            "plugin name to its settings, such as {docker: {url: ...}}")
    return (None if raw is None else tuple(raw)), {k: dict(v) for k, v in plugins.items()}


def _config(raw: Any, version: str) -> dict[str, float]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise BundleRefused("config", f"bundle {version}: config is not a mapping")
    out: dict[str, float] = {}
    for key, value in raw.items():
        if key not in CONFIG_KEYS:
            raise BundleRefused("config", f"bundle {version}: config.{key}: a bundle sets only "
                                f"{', '.join(CONFIG_KEYS)}")
        try:
            seconds = parse_duration(value, f"config.{key}")
        except ValueError as exc:
            raise BundleRefused("config", f"bundle {version}: {exc}") from None
        if seconds <= 0:
            raise BundleRefused("config", f"bundle {version}: config.{key}: must be longer "
                                "than 0s")
        out[key] = seconds
    return out


def _models(raw: Any, version: str) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise BundleRefused("config", f"bundle {version}: models: expected a mapping of model "
                            "name to version")
    out: dict[str, str] = {}
    for model, model_version in raw.items():
        if not isinstance(model, str) or not _MODEL.fullmatch(model):
            raise BundleRefused("config", f"bundle {version}: models: {model!r} is not a model "
                                "name (letters, digits, _.:/@-)")
        if isinstance(model_version, bool) or not isinstance(model_version, str | int | float) \
                or not _MODEL.fullmatch(str(model_version)):
            raise BundleRefused("config", f"bundle {version}: models.{model}: expected a "
                                f"version string such as '3.2.0', got {model_version!r}")
        out[model] = str(model_version)
    return out
