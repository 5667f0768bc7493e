"""The modelmon config file (YAML), shared by ``modelmon serve`` and later
sections (logs, edge). Every error names the field and says what is expected.

Example::

    listen: 127.0.0.1:9110
    prefix: modelmon_
    web_config_file: web.yml      # Prometheus exporter-toolkit format: basic auth, TLS
    logs:                         # optional: ship /ingest events as logs (docs/logging.md)
      sink: elasticsearch
      elasticsearch: {url: "https://es:9200", api_key_file: /etc/modelmon/es-key}
    threads: 8
    max_label_values: 200         # per label of each metric; overflow -> __other__
    max_series: 5000              # series of the whole server; overflow -> __other__
    ingest:
      max_body_bytes: 1MiB
      max_events: 10000
    buckets:
      inference_duration_seconds: [0.005, 0.01, 0.05, 0.1, 0.5, 1, 5]
    plugins:                      # per-plugin sections, by entry-point name
      build_info: {}
    quality:                      # reference profiles for /ingest prediction events
      models:
        credit:                   # model name; applies to all its versions
          profile: profiles/credit.json
          options: {window: 10000, feedback_db: "/var/lib/modelmon/{model}-{version}.sqlite"}
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypedDict, cast

import yaml

from modelmon.catalog import CATALOG
from modelmon.kpi import DEFAULT_PREFIX
from modelmon.labels import DEFAULT_MAX_SERIES
from modelmon.units import parse_size


class ConfigError(ValueError):
    """A config value is wrong; the message names the field and the fix."""


@dataclass(frozen=True)
class IngestConfig:
    max_body_bytes: int = 1024 * 1024
    max_events: int = 10_000


class QualityOptions(TypedDict, total=False):
    """Options of a model's QualityTracker: ``ModelMonitor(quality_options=...)`` and
    ``options:`` of a model under ``quality.models``. Each is documented on
    ``modelmon.exporters.quality.QualityTracker``, which checks the values."""

    window: int | str | float
    window_chunks: int
    drift_features: Sequence[str] | None
    drift_top_k: int
    max_bin_series: int
    task: Literal["classification", "regression"] | None
    max_classes: int
    feedback_db: str | Path | None
    feedback_ttl: str | float
    feedback_max_entries: int
    feedback_window: int
    max_confusion_classes: int
    feedback_queue: int
    refresh_seconds: float
    # Tests drive time windows with it; a config file cannot hold a function.
    clock: Callable[[], float]


_FILE_QUALITY_OPTIONS = QualityOptions.__optional_keys__ - {"clock"}


@dataclass(frozen=True)
class ModelQualityConfig:
    """Per-model quality settings of modelmon serve: a profile and QualityTracker options."""

    profile: Path | None = None
    # ``{model}`` and ``{version}`` in string options (feedback_db) are filled in.
    options: Mapping[str, Any] = field(default_factory=dict)
    # A relative feedback_db is relative to the config file, like every path in it.
    base_dir: Path | None = None

    def for_version(self, model: str, version: str) -> QualityOptions:
        # The version comes from /ingest clients: only path-safe characters
        # reach a file name ("../../etc" must not climb out of the folder).
        model, version = (_path_safe(v) for v in (model, version))
        options: dict[str, Any] = {
            k: v.format(model=model, version=version) if isinstance(v, str) else v
            for k, v in self.options.items()
        }
        db = options.get("feedback_db")
        if isinstance(db, str) and self.base_dir is not None and not Path(db).is_absolute():
            options["feedback_db"] = str(self.base_dir / db)
        # Keys were checked when the file was read; QualityTracker checks the values.
        return cast(QualityOptions, options)


def _path_safe(name: str) -> str:
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", name)
    return safe if safe.strip(".") else safe.replace(".", "_")


@dataclass(frozen=True)
class ServeConfig:
    host: str = "127.0.0.1"
    port: int = 9110
    prefix: str = DEFAULT_PREFIX
    web_config_file: Path | None = None
    threads: int = 8
    max_label_values: int = 200
    max_series: int = DEFAULT_MAX_SERIES
    ingest: IngestConfig = field(default_factory=IngestConfig)
    buckets: Mapping[str, tuple[float, ...]] = field(default_factory=dict)
    plugins: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    quality: Mapping[str, ModelQualityConfig] = field(default_factory=dict)
    # Where relative paths of the file resolve (its folder); None without a file.
    base_dir: Path | None = None
    # Sections owned by other components (logs, edge, ...) kept verbatim.
    raw: Mapping[str, Any] = field(default_factory=dict)

    @property
    def listen(self) -> str:
        return f"{self.host}:{self.port}"


def parse_listen(value: object, field_name: str = "listen") -> tuple[str, int]:
    text = str(value)
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError(f"{field_name}: expected HOST:PORT such as 127.0.0.1:9110, got {value!r}")
    return host.strip("[]") or "0.0.0.0", int(port)


def _positive_int(value: object, field_name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{field_name}: expected a positive integer, got {value!r}")
    return value


_KNOWN = {"listen", "prefix", "web_config_file", "threads", "max_label_values", "max_series",
          "ingest", "buckets", "plugins", "quality"}
# Sections that belong to other components; validated by them.
_FOREIGN = {"logs", "edge", "bundles"}


def _quality_from_mapping(data: Any, base_dir: Path | None) -> dict[str, ModelQualityConfig]:
    if not isinstance(data, Mapping) or set(data) - {"models"}:
        raise ConfigError("quality: expected a mapping with 'models' (model name -> profile, options)")
    models = data.get("models") or {}
    if not isinstance(models, Mapping):
        raise ConfigError("quality.models: expected a mapping of model name to {profile, options}")
    parsed: dict[str, ModelQualityConfig] = {}
    for name, entry in models.items():
        where = f"quality.models.{name}"
        if not isinstance(entry, Mapping) or set(entry) - {"profile", "options"}:
            raise ConfigError(f"{where}: expected a mapping with 'profile' (a path) and 'options'")
        profile = None
        if entry.get("profile") is not None:
            profile = Path(str(entry["profile"]))
            if not profile.is_absolute() and base_dir is not None:
                profile = base_dir / profile
            if not profile.is_file():
                raise ConfigError(
                    f"{where}.profile: file {profile} does not exist; build one with "
                    "'modelmon profile build --data train.csv --model NAME --out FILE'"
                )
        options = entry.get("options") or {}
        if not isinstance(options, Mapping):
            raise ConfigError(f"{where}.options: expected a mapping of QualityTracker options")
        unknown = sorted(str(k) for k in set(options) - _FILE_QUALITY_OPTIONS)
        if unknown:
            raise ConfigError(
                f"{where}.options: unknown option(s) {', '.join(unknown)}; known options are "
                f"{', '.join(sorted(_FILE_QUALITY_OPTIONS))}"
            )
        parsed[str(name)] = ModelQualityConfig(profile, dict(options), base_dir)
    return parsed


def serve_config_from_mapping(data: Mapping[str, Any], base_dir: Path | None = None) -> ServeConfig:
    if not isinstance(data, Mapping):
        raise ConfigError("config: the top level must be a mapping of keys such as 'listen'")
    unknown = set(data) - _KNOWN - _FOREIGN
    if unknown:
        raise ConfigError(
            f"config: unknown key(s) {', '.join(sorted(unknown))}; known keys are "
            f"{', '.join(sorted(_KNOWN | _FOREIGN))}"
        )
    kwargs: dict[str, Any] = {"raw": dict(data), "base_dir": base_dir}
    if "listen" in data:
        kwargs["host"], kwargs["port"] = parse_listen(data["listen"])
    if "prefix" in data:
        prefix = data["prefix"]
        if not isinstance(prefix, str) or not prefix.replace("_", "a").isalnum():
            raise ConfigError(f"prefix: expected letters, digits and '_' like 'modelmon_', got {prefix!r}")
        kwargs["prefix"] = prefix
    if data.get("web_config_file"):
        path = Path(str(data["web_config_file"]))
        kwargs["web_config_file"] = path if path.is_absolute() or base_dir is None else base_dir / path
    for key in ("threads", "max_label_values", "max_series"):
        if key in data:
            kwargs[key] = _positive_int(data[key], key)
    ingest = data.get("ingest") or {}
    if not isinstance(ingest, Mapping):
        raise ConfigError("ingest: expected a mapping with max_body_bytes and max_events")
    bad = set(ingest) - {"max_body_bytes", "max_events"}
    if bad:
        raise ConfigError(f"ingest: unknown key(s) {', '.join(sorted(bad))}; known: max_body_bytes, max_events")
    try:
        kwargs["ingest"] = IngestConfig(
            max_body_bytes=parse_size(ingest.get("max_body_bytes", IngestConfig.max_body_bytes),
                                      "ingest.max_body_bytes"),
            max_events=_positive_int(ingest.get("max_events", IngestConfig.max_events), "ingest.max_events"),
        )
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    buckets = data.get("buckets") or {}
    if not isinstance(buckets, Mapping):
        raise ConfigError("buckets: expected a mapping of histogram name to a list of bounds")
    parsed: dict[str, tuple[float, ...]] = {}
    histograms = sorted(k.name for k in CATALOG if k.type == "histogram")
    for name, bounds in buckets.items():
        if name not in histograms:
            raise ConfigError(
                f"buckets.{name}: not a histogram modelmon exports; histograms are "
                f"{', '.join(histograms)}"
            )
        if not isinstance(bounds, list) or not bounds or not all(
            isinstance(b, int | float) and not isinstance(b, bool) for b in bounds
        ) or sorted(bounds) != bounds:
            raise ConfigError(f"buckets.{name}: expected a sorted list of numbers, got {bounds!r}")
        parsed[str(name)] = tuple(float(b) for b in bounds)
    kwargs["buckets"] = parsed
    plugins = data.get("plugins") or {}
    if not isinstance(plugins, Mapping) or not all(isinstance(v, Mapping | None) for v in plugins.values()):
        raise ConfigError("plugins: expected a mapping of plugin name to its settings mapping")
    kwargs["plugins"] = {str(k): dict(v or {}) for k, v in plugins.items()}
    if data.get("quality") is not None:
        kwargs["quality"] = _quality_from_mapping(data["quality"], base_dir)
    return ServeConfig(**kwargs)


def load_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"config file {path}: cannot read it ({exc.strerror})") from None
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path}: the top level must be a mapping")
    return data


def load_serve_config(path: str | Path | None) -> ServeConfig:
    if path is None:
        return ServeConfig()
    data = load_yaml(path)  # its errors already name the file
    try:
        return serve_config_from_mapping(data, Path(path).parent)
    except ConfigError as exc:
        raise ConfigError(f"config file {path}: {exc}") from None
