"""Configuration bundles: built and signed, every check a device makes, the
on-disk last known good, the ETag server, and a device's overrides."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from prometheus_client import CollectorRegistry

from modelmon.exporters.edge.bundles.format import (
    MANIFEST,
    SIGNATURE,
    BundleRefused,
    BundleSourceError,
    _tar,
    build_bundle,
    read_bundle,
)
from modelmon.exporters.edge.bundles.manager import BundleManager
from modelmon.exporters.edge.bundles.overrides import effective_rules
from modelmon.exporters.edge.bundles.server import bundle_app, etag_matches
from modelmon.exporters.edge.bundles.signing import (
    generate_keypair,
    key_verifier,
    load_private_key,
    load_public_key,
    sign,
    subprocess_verifier,
)
from modelmon.exporters.edge.bundles.store import BundleStore
from modelmon.exporters.edge.bundles.telemetry import BundleMetrics
from modelmon.exporters.edge.config import BundleConfig
from modelmon.exporters.edge.http_server import serve
from modelmon.exporters.edge.rules import parse_rule_groups
from modelmon.exporters.edge.rules.runner import EdgeRuleRunner

RULES = """
groups:
  - name: fleet
    rules:
      - record: device:cpu:max
        expr: max(modelmon_system_cpu_utilization_ratio)
      - alert: DeviceHot
        expr: max(modelmon_system_cpu_utilization_ratio) > 0.9
        for: 1m
"""


@pytest.fixture
def keys(tmp_path: Path) -> tuple[Path, Path]:
    generate_keypair(tmp_path / "k.key", tmp_path / "k.pub")
    return tmp_path / "k.key", tmp_path / "k.pub"


def source(tmp_path: Path, version: str = "2026.12.01-1", rules: str = RULES,
           extra: str = "evaluation_interval: 20s\nmodels: {fraud: '3.10'}\n") -> Path:
    src = tmp_path / f"src-{version}"
    (src / "rules").mkdir(parents=True)
    (src / "rules" / "fleet.yml").write_text(rules)
    (src / "bundle.yml").write_text(f"version: '{version}'\nrules: [rules/*.yml]\n{extra}")
    return src


def members(data: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        return {m.name: tar.extractfile(m).read() for m in tar}  # type: ignore[union-attr]


def test_a_signed_bundle_reads_back_as_built(tmp_path: Path, keys: tuple[Path, Path]) -> None:
    data = build_bundle(source(tmp_path), key=load_private_key(keys[0]))
    bundle = read_bundle(data, key_verifier(load_public_key(keys[1])))
    assert (bundle.version, bundle.signed) == ("2026.12.01-1", True)
    assert bundle.models == {"fraud": "3.10"}
    assert bundle.config == {"evaluation_interval": 20.0}
    assert [g.name for g in bundle.rule_groups] == ["fleet"]
    assert [r.name for r in bundle.rule_groups[0].rules] == ["device:cpu:max", "DeviceHot"]
    manifest = json.loads(members(data)[MANIFEST])
    assert set(manifest["files"]) == {"rules/fleet.yml"}
    import hashlib
    assert bundle.sha256 == hashlib.sha256(members(data)[MANIFEST]).hexdigest()


def test_every_tampering_is_refused_with_its_reason(tmp_path: Path,
                                                    keys: tuple[Path, Path]) -> None:
    private, public = load_private_key(keys[0]), key_verifier(load_public_key(keys[1]))
    parts = members(build_bundle(source(tmp_path), key=private))

    changed_rule = {**parts, "rules/fleet.yml": parts["rules/fleet.yml"].replace(b"0.9", b"0.1")}
    manifest = json.loads(parts[MANIFEST])
    manifest["models"]["fraud"] = "6.6.6"
    changed_manifest = {**parts, MANIFEST: json.dumps(manifest).encode()}
    extra_file = {**parts, "rules/extra.yml": b"groups: []\n"}
    unsigned = {k: v for k, v in parts.items() if k != SIGNATURE}
    generate_keypair(tmp_path / "other.key", tmp_path / "other.pub")
    other_key = {**parts, SIGNATURE: sign(load_private_key(tmp_path / "other.key"),
                                          parts[MANIFEST])}
    cases = {
        "checksum": [changed_rule, extra_file],
        "signature": [changed_manifest, unsigned, other_key],
    }
    for reason, variants in cases.items():
        for variant in variants:
            with pytest.raises(BundleRefused) as refused:
                read_bundle(_tar(variant), public)
            assert refused.value.reason == reason, str(refused.value)
    for junk in (b"not a bundle", gzip.compress(b"not a tar"), b""):
        with pytest.raises(BundleRefused) as refused:
            read_bundle(junk, public)
        assert refused.value.reason == "unreadable"
    with pytest.raises(BundleRefused, match="allow_unsigned"):
        read_bundle(_tar(unsigned), None)
    assert read_bundle(_tar(unsigned), None, require_signature=False).signed is False


def test_an_archive_of_many_empty_files_is_refused_as_it_is_read() -> None:
    """Empty members cost the archive a few bytes each once gzip'd, and are read before
    the signature: the device stops at MAX_BUNDLE_FILES rather than hold them all."""
    from modelmon.exporters.edge.bundles.format import MAX_BUNDLE_FILES

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for i in range(MAX_BUNDLE_FILES + 1):
            tar.addfile(tarfile.TarInfo(f"rules/{i}.yml"), io.BytesIO(b""))
    with pytest.raises(BundleRefused, match=f"more than {MAX_BUNDLE_FILES} files") as refused:
        read_bundle(buf.getvalue(), None, require_signature=False)
    assert refused.value.reason == "unreadable"


def test_a_path_outside_the_bundle_is_refused(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb") as gz, tarfile.open(fileobj=gz, mode="w") as tar:
        info = tarfile.TarInfo("../escape.yml")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"x: 1"))
    with pytest.raises(BundleRefused, match="relative path") as refused:
        read_bundle(buf.getvalue(), None, require_signature=False)
    assert refused.value.reason == "unreadable"


def test_a_signed_bundle_whose_rules_the_device_cannot_run_is_refused(
        tmp_path: Path, keys: tuple[Path, Path]) -> None:
    private = load_private_key(keys[0])
    bad = RULES.replace("max(modelmon_system_cpu_utilization_ratio) > 0.9",
                        "holt_winters(modelmon_system_cpu_utilization_ratio[5m], 0.5, 0.5)")
    with pytest.raises(BundleSourceError, match="holt_winters"):  # never built...
        build_bundle(source(tmp_path, rules=bad), key=private)
    # ...and refused by the device when built by something else and signed anyway.
    parts = members(build_bundle(source(tmp_path, "2"), key=private))
    manifest = json.loads(parts[MANIFEST])
    import hashlib
    manifest["files"]["rules/fleet.yml"] = hashlib.sha256(bad.encode()).hexdigest()
    manifest_bytes = json.dumps(manifest).encode()
    forged = {MANIFEST: manifest_bytes, SIGNATURE: sign(private, manifest_bytes),
              "rules/fleet.yml": bad.encode()}
    with pytest.raises(BundleRefused, match="DeviceHot.*holt_winters") as refused:
        read_bundle(_tar(forged), subprocess_verifier(keys[1]))
    assert refused.value.reason == "rules"


@pytest.mark.parametrize("extra, message", [
    ("models: {fraud: 3.10}\n", "quote the version"),
    ("models: [fraud]\n", "mapping of model name"),
    ("colour: blue\n", "colour: unknown key"),
    ("evaluation_interval: soon\n", "evaluation_interval"),
])
def test_a_bad_source_names_the_field(tmp_path: Path, extra: str, message: str) -> None:
    with pytest.raises((BundleSourceError, BundleRefused), match=message):
        build_bundle(source(tmp_path, extra=extra))


def test_the_store_keeps_the_applied_bundle_and_the_one_before(tmp_path: Path) -> None:
    store = BundleStore(tmp_path / "bundles")
    for i in range(3):
        store.save(f"bundle {i}".encode(), f"{i:064d}", str(i), "import", None)
    assert [e.version for e in store.entries()] == ["2", "1"]
    assert sorted(p.name for p in store.directory.glob("*.tar.gz")) == [
        f"{1:064d}.tar.gz", f"{2:064d}.tar.gz"]
    assert store.read(store.entries()[1]) == b"bundle 1"


def test_etag_matching_follows_rfc_9110() -> None:
    assert etag_matches('"a", W/"b"', '"b"')
    assert etag_matches("*", '"x"')
    assert not etag_matches("", '"x"')
    assert not etag_matches('"ab"', '"a"')


@pytest.fixture
def bundle_server(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    directory = tmp_path / "published"
    directory.mkdir()
    httpd = serve("127.0.0.1", 0, bundle_app(directory))
    yield directory, f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()
    httpd.server_close()


def test_the_server_answers_304_until_the_file_changes(bundle_server: tuple[Path, str]) -> None:
    directory, url = bundle_server
    (directory / "site-a.tar.gz").write_bytes(b"one")
    first = requests.get(f"{url}/site-a.tar.gz", timeout=5)
    assert (first.status_code, first.content) == (200, b"one")
    etag = first.headers["ETag"]
    again = requests.get(f"{url}/site-a.tar.gz", headers={"If-None-Match": etag}, timeout=5)
    assert (again.status_code, again.content) == (304, b"")
    (directory / "site-a.tar.gz").write_bytes(b"two!")
    changed = requests.get(f"{url}/site-a.tar.gz", headers={"If-None-Match": etag}, timeout=5)
    assert (changed.status_code, changed.content) == (200, b"two!")
    assert changed.headers["ETag"] != etag
    assert requests.get(f"{url}/site-b.tar.gz", timeout=5).status_code == 404
    assert requests.get(f"{url}/../etc/passwd", timeout=5).status_code == 404


def test_the_device_s_own_settings_and_groups_win(tmp_path: Path) -> None:
    bundle = read_bundle(build_bundle(source(tmp_path)), None, require_signature=False)
    own = parse_rule_groups(RULES.replace("> 0.9", "> 0.5"), "device.yml")
    mine = effective_rules(own, bundle, interval=10, evaluation_interval=None,
                           query_window=None)
    assert [g.file for g in mine.groups] == ["device.yml"] and mine.overridden == ("fleet",)
    assert mine.evaluation_interval == 20.0
    assert effective_rules([], bundle, interval=10, evaluation_interval=5,
                           query_window=None).evaluation_interval == 5
    assert effective_rules([], None, interval=10, evaluation_interval=None,
                           query_window=None).evaluation_interval == 10


def test_replacing_groups_keeps_the_alert_state_of_an_unchanged_group() -> None:
    from modelmon.exporters.edge.prompb import SeriesEncoder
    from modelmon.exporters.edge.remote_write import compress

    hot = RULES.replace("> 0.9", "> 0.5")
    runner = EdgeRuleRunner(parse_rule_groups(hot, "bundle:rules/fleet.yml"), 10.0,
                            {"device": "d"})
    encoder = SeriesEncoder()
    for t in range(0, 50_000, 10_000):
        runner.observe([compress(encoder.encode(
            (("__name__", "modelmon_system_cpu_utilization_ratio"),), 0.7, t))])
        runner.evaluate_due(t)
    evaluator = runner._groups[0][0]
    runner.replace_groups(parse_rule_groups(hot, "bundle:rules/fleet.yml"), 10.0)
    assert runner._groups[0][0] is evaluator  # same group: alert state kept
    runner.replace_groups(parse_rule_groups(RULES, "bundle:rules/fleet.yml"), 10.0)
    assert runner._groups[0][0] is not evaluator
    assert len(runner.storage) > 0  # the window survives


def _manager(tmp_path: Path, url: str | None, public: Path,
             installed: list[str]) -> tuple[BundleManager, CollectorRegistry]:
    registry = CollectorRegistry()
    config = BundleConfig(url=url, public_key=public, poll_interval=60)
    manager = BundleManager(config, tmp_path / "state" / "bundles",
                            BundleMetrics(registry, "modelmon_", "press-7"),
                            lambda b: installed.append(b.version))
    return manager, registry


def test_pull_apply_refuse_and_restore(tmp_path: Path, keys: tuple[Path, Path],
                                       bundle_server: tuple[Path, str]) -> None:
    directory, base = bundle_server
    private = load_private_key(keys[0])
    url = f"{base}/site-a.tar.gz"
    installed: list[str] = []
    manager, registry = _manager(tmp_path, url, keys[1], installed)
    assert manager.pull() == "failed"  # nothing published yet: a 404

    (directory / "site-a.tar.gz").write_bytes(build_bundle(source(tmp_path, "1"), key=private))
    assert manager.pull() == "applied"
    assert manager.pull() == "unchanged"  # a 304
    v1 = manager.current
    assert v1 is not None
    info = registry.get_sample_value("modelmon_edge_config_info", {
        "device": "press-7", "version": "1", "sha256": v1.sha256})
    assert info == 1.0
    assert registry.get_sample_value("modelmon_edge_model_desired_info", {
        "device": "press-7", "model": "fraud", "version": "3.10"}) == 1.0

    good = build_bundle(source(tmp_path, "2", extra="models: {fraud: '4.0'}\n"), key=private)
    parts = members(good)
    tampered = {**parts, "rules/fleet.yml": parts["rules/fleet.yml"] + b"\n# changed\n"}
    (directory / "site-a.tar.gz").write_bytes(_tar(tampered))
    assert manager.pull() == "refused"
    assert manager.pull() == "refused"  # the same bad bundle: a 304, not counted again
    assert registry.get_sample_value("modelmon_edge_bundles_refused_total",
                                     {"device": "press-7", "reason": "checksum"}) == 1.0
    assert registry.get_sample_value("modelmon_edge_bundle_pulls_total",
                                     {"device": "press-7", "outcome": "refused"}) == 2.0
    assert manager.current == v1 and installed == ["1"]
    assert manager.last_refusal is not None and manager.last_refusal["reason"] == "checksum"

    (directory / "site-a.tar.gz").write_bytes(good)
    assert manager.pull() == "applied" and installed == ["1", "2"]
    assert registry.get_sample_value("modelmon_edge_config_info", {
        "device": "press-7", "version": "1", "sha256": v1.sha256}) is None
    assert registry.get_sample_value("modelmon_edge_model_desired_info", {
        "device": "press-7", "model": "fraud", "version": "4.0"}) == 1.0

    # A restart, the server gone: the last known good comes back from disk.
    again: list[str] = []
    restarted, _ = _manager(tmp_path, "http://127.0.0.1:9/none.tar.gz", keys[1], again)
    assert restarted.restore() is not None and again == ["2"]
    assert restarted.last_success == manager.last_success  # EdgeConfigStale's clock survives
    # The applied file damaged on disk: the one before it runs instead.
    assert restarted.current is not None
    (restarted.store.directory / f"{restarted.current.sha256}.tar.gz").write_bytes(b"rot")
    third: list[str] = []
    damaged, reg3 = _manager(tmp_path, None, keys[1], third)
    assert damaged.restore() is not None and third == ["1"]
    assert reg3.get_sample_value("modelmon_edge_bundles_refused_total",
                                 {"device": "press-7", "reason": "unreadable"}) == 1.0


def test_an_imported_bundle_is_applied_and_removed(tmp_path: Path,
                                                   keys: tuple[Path, Path]) -> None:
    installed: list[str] = []
    manager, _ = _manager(tmp_path, None, keys[1], installed)
    data = build_bundle(source(tmp_path, "7"), key=load_private_key(keys[0]))
    (manager.store.incoming / "a.tar.gz").write_bytes(data)
    (manager.store.incoming / "b.tar.gz").write_bytes(build_bundle(source(tmp_path, "8")))
    assert manager.take_incoming() == ["applied", "refused"]  # b is unsigned
    assert installed == ["7"] and not list(manager.store.incoming.iterdir())


def test_edge_status_says_which_bundle_runs_and_why_a_newer_one_does_not() -> None:
    from modelmon.exporters.edge.status import render

    now = 1_000_000.0
    text = render({"device_id": "press-7", "updated": now, "bundle": {
        "url": "http://cloud/site.tar.gz", "version": "7", "sha256": "ab" * 32,
        "source": "import", "applied_at": now - 60, "last_success": None,
        "last_error": "HTTP 503 from http://cloud/site.tar.gz",
        "last_refusal": {"at": now - 5, "source": "http://cloud/site.tar.gz",
                         "reason": "signature", "message": "the signature does not match"},
    }}, now=now)
    assert "bundle:        7 (abababababab) from import, applied 60s ago" in text
    assert "not confirmed since start - last error: HTTP 503" in text
    assert "REFUSED:       5s ago, from http://cloud/site.tar.gz (signature)" in text
    assert "bundle" not in render({"device_id": "d", "updated": now}, now=now)


def test_modelmon_serve_hosts_bundles_per_device_group(tmp_path: Path) -> None:
    from modelmon.config import ConfigError, serve_config_from_mapping
    from modelmon.exporters.service.app import create_app

    published = tmp_path / "published"
    published.mkdir()
    data = build_bundle(source(tmp_path))
    (published / "press-lines.tar.gz").write_bytes(data)
    client = create_app(serve_config_from_mapping({"bundles": {"dir": str(published)}}),
                        registry=CollectorRegistry()).test_client()
    first = client.get("/bundles/press-lines.tar.gz")
    assert (first.status_code, first.data) == (200, data)
    etag = first.headers["ETag"]
    assert client.get("/bundles/press-lines.tar.gz",
                      headers={"If-None-Match": etag}).status_code == 304
    assert client.get("/bundles/other.tar.gz").status_code == 404
    assert client.get("/bundles/..%2Fsecret.tar.gz").status_code == 404
    with pytest.raises(ConfigError, match="bundles.dir"):
        create_app(serve_config_from_mapping({"bundles": {"dir": str(tmp_path / "none")}}),
                   registry=CollectorRegistry())


def test_the_agent_verifies_signatures_without_loading_cryptography(
        tmp_path: Path, keys: tuple[Path, Path]) -> None:
    """A child process checks signatures (about 9 MiB of RSS saved in the agent); its
    verdicts are the in-process ones, and a key file is checked without the library."""
    import subprocess
    import sys

    from modelmon.exporters.edge.bundles.signing import (
        BundleKeyError,
        VerifierUnavailable,
        check_public_key_file,
    )

    private = load_private_key(keys[0])
    data = b"manifest bytes"
    check = subprocess_verifier(keys[1])
    assert check(sign(private, data), data) is True
    assert check(sign(private, data), data + b"!") is False
    check_public_key_file(keys[1])
    (tmp_path / "bad.pub").write_bytes(keys[0].read_bytes())  # a private key is no public key
    with pytest.raises(BundleKeyError, match="not an Ed25519 public key"):
        check_public_key_file(tmp_path / "bad.pub")
    with pytest.raises(VerifierUnavailable):
        subprocess_verifier(tmp_path / "bad.pub")(sign(private, data), data)
    code = ("import sys; from modelmon.exporters.edge import edge_config_from_mapping;"
            f"edge_config_from_mapping({{'device_id': 'd', 'spool': {{'path': {str(tmp_path)!r}}},"
            "'remote_write': {'url': 'http://127.0.0.1:9/w'},"
            f"'bundle': {{'public_key': {str(keys[1])!r}}}}});"
            "from modelmon.exporters.edge.bundles import manager;"
            "print(any(m.startswith('cryptography') for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "False", out.stderr


def test_a_signature_check_that_cannot_run_is_a_failed_pull_not_a_refusal(
        tmp_path: Path, keys: tuple[Path, Path], bundle_server: tuple[Path, str]) -> None:
    directory, base = bundle_server
    (directory / "site.tar.gz").write_bytes(
        build_bundle(source(tmp_path), key=load_private_key(keys[0])))
    (tmp_path / "unreadable.pub").write_text("not a key")
    installed: list[str] = []
    manager, registry = _manager(tmp_path, f"{base}/site.tar.gz", tmp_path / "unreadable.pub",
                                 installed)
    assert manager.pull() == "failed" and installed == []
    assert "signature check failed" in manager.last_error
    assert registry.get_sample_value("modelmon_edge_bundles_refused_total",
                                     {"device": "press-7", "reason": "signature"}) == 0.0
    manager._verifier = subprocess_verifier(keys[1])  # the key fixed: the same bundle applies
    assert manager.pull() == "applied" and len(installed) == 1
