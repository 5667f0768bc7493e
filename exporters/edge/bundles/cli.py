"""``modelmon edge bundle build|keygen|inspect|import|serve``."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any


def register(edge: Any) -> None:
    """Add ``bundle`` and its subcommands to the ``edge`` subparsers."""
    p = edge.add_parser(
        "bundle", help="configuration bundles: build, sign, serve, import (docs/edge.md)",
        description="Configuration bundles: rule files, thresholds, reference profiles, "
        "collector settings, edge settings and desired model versions, signed in the cloud "
        "and applied by the devices. See docs/edge.md.")
    p.set_defaults(func=None, _parser=p)
    sub = p.add_subparsers(dest="bundle_command", metavar="SUBCOMMAND")

    build = sub.add_parser("build", help="pack DIR (bundle.yml and its files) into a bundle",
                           description="Check the rules as the devices will and write a "
                           "versioned, optionally signed bundle.")
    build.add_argument("dir", type=Path, help="directory with bundle.yml")
    build.add_argument("--out", required=True, type=Path, help="the bundle file to write")
    build.add_argument("--version", default=None, help="overrides bundle.yml's version")
    build.add_argument("--key", type=Path, default=None,
                       help="Ed25519 private key (PEM) to sign with")
    build.set_defaults(func=_build)

    keygen = sub.add_parser("keygen", help="write a new Ed25519 key pair",
                            description="Write PREFIX.key (private, owner-only: keep it in the "
                            "cloud) and PREFIX.pub (give it to the devices as "
                            "bundle.public_key).")
    keygen.add_argument("--out", required=True, type=Path, help="PREFIX of the two files")
    keygen.set_defaults(func=_keygen)

    inspect = sub.add_parser("inspect", help="check a bundle and print what it holds")
    inspect.add_argument("file", type=Path)
    inspect.add_argument("--public-key", type=Path, default=None,
                         help="verify the signature with this key (else only the hashes)")
    inspect.set_defaults(func=_inspect)

    imp = sub.add_parser("import", help="apply a bundle by hand (no link to the bundle URL)",
                         description="Check FILE with the device's key and hand it to the "
                         "agent, which applies it within a second (or at its next start).")
    imp.add_argument("file", type=Path)
    imp.add_argument("--config", required=True, type=Path, help="the agent's config file")
    imp.add_argument("--timeout", type=float, default=None,
                     help="seconds to wait for the running agent to apply it (default: "
                     "bundle.timeout + 15, as a pull in progress finishes first)")
    imp.set_defaults(func=_import)

    serve = sub.add_parser("serve", help="serve DIR/<group>.tar.gz over HTTP with ETags")
    serve.add_argument("dir", type=Path)
    serve.add_argument("--listen", default="127.0.0.1:9110", help="host:port (default %(default)s)")
    serve.set_defaults(func=_serve)


def _fail(message: str) -> int:
    print(message, file=sys.stderr)
    return 2


def _build(args: argparse.Namespace) -> int:
    from .format import BundleSourceError, build_bundle, read_bundle
    from .signing import BundleKeyError, load_private_key
    from .store import write_atomic

    try:
        key = load_private_key(args.key) if args.key is not None else None
        data = build_bundle(args.dir, version=args.version, key=key)
    except (BundleSourceError, BundleKeyError) as exc:
        return _fail(str(exc))
    bundle = read_bundle(data, None, require_signature=False)
    write_atomic(args.out, data)
    args.out.chmod(0o644)
    print(f"{args.out}: bundle {bundle.version} sha256 {bundle.sha256} "
          f"({'signed' if key else 'UNSIGNED'}, {len(bundle.rule_groups)} rule groups, "
          f"{len(bundle.models)} model pins"
          f"{', thresholds' if bundle.thresholds is not None else ''}"
          f"{f', {len(bundle.profiles)} profiles' if bundle.profiles else ''}"
          f"{', collector settings' if bundle.collectors is not None or bundle.plugins else ''}"
          ")")
    return 0


def _keygen(args: argparse.Namespace) -> int:
    from .signing import BundleKeyError, generate_keypair

    private, public = Path(f"{args.out}.key"), Path(f"{args.out}.pub")
    try:
        generate_keypair(private, public)
    except BundleKeyError as exc:
        return _fail(str(exc))
    print(f"wrote {private} (keep it secret, sign with --key) and {public} (bundle.public_key "
          "on the devices)")
    return 0


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError as exc:
        print(f"{path}: cannot read it ({exc.strerror})", file=sys.stderr)
        return None


def _inspect(args: argparse.Namespace) -> int:
    from .format import BundleRefused, read_bundle
    from .signing import BundleKeyError, key_verifier, load_public_key

    data = _read(args.file)
    if data is None:
        return 2
    try:
        key = load_public_key(args.public_key) if args.public_key is not None else None
        bundle = read_bundle(data, key_verifier(key) if key else None, require_signature=False)
    except BundleKeyError as exc:
        return _fail(str(exc))
    except BundleRefused as exc:
        return _fail(f"{args.file}: refused ({exc.reason}): {exc}")
    print(f"version:  {bundle.version}\nsha256:   {bundle.sha256}\n"
          f"created:  {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(bundle.created))}\n"
          f"signed:   {'yes, verified' if key else 'yes, not verified' if bundle.signed else 'no'}")
    for name, seconds in bundle.config.items():
        print(f"config:   {name} = {seconds:g}s")
    for group in bundle.rule_groups:
        print(f"rules:    {group.name} ({len(group.rules)} rules, {group.file})")
    for model, version in bundle.models.items():
        print(f"model:    {model} = {version}")
    if bundle.thresholds is not None:
        groups = ", ".join(f"{g.name} ({len(g.rules)} rules)" for g in bundle.threshold_groups)
        print(f"thresholds: yes; generates {groups or 'no rule group'}")
    for model, (sha256, profile) in bundle.profiles.items():
        print(f"profile:  {model} ({len(profile.features)} features, sha256 {sha256[:12]})")
    if bundle.collectors is not None:
        print(f"collectors: {', '.join(bundle.collectors) or 'none'}")
    for plugin, settings in bundle.plugins.items():
        print(f"plugin:   {plugin}: {', '.join(settings) or 'no settings'}")  # values may be secret
    return 0


def _import(args: argparse.Namespace) -> int:
    from modelmon.exporters.edge import load_edge_config
    from modelmon.exporters.edge.status import agent_running, read_status

    from .format import BundleRefused, read_bundle
    from .signing import key_verifier, load_public_key
    from .store import BundleStore, write_atomic

    config = load_edge_config(args.config)
    if config.bundle is None:
        return _fail(f"{args.config}: the edge config has no bundle: section; add one with "
                     "public_key (docs/edge.md)")
    data = _read(args.file)
    if data is None:
        return 2
    key = load_public_key(config.bundle.public_key) if config.bundle.public_key else None
    try:  # the agent checks again; this tells the operator now
        bundle = read_bundle(data, key_verifier(key) if key else None,
                             require_signature=not config.bundle.allow_unsigned)
    except BundleRefused as exc:
        return _fail(f"{args.file}: refused ({exc.reason}): {exc}")
    store = BundleStore(config.state_dir / "bundles")
    started = time.time()
    write_atomic(store.incoming / f"{int(started * 1000)}-{bundle.sha256[:16]}.tar.gz", data)
    status = read_status(config.status_file)
    if status is None or not agent_running(status):
        print(f"bundle {bundle.version} ({bundle.sha256[:12]}) queued; the agent applies it "
              "when it starts")
        return 0
    timeout = args.timeout if args.timeout is not None else config.bundle.timeout + 15.0
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = (read_status(config.status_file) or {}).get("bundle") or {}
        if state.get("sha256") == bundle.sha256:
            print(f"bundle {bundle.version} ({bundle.sha256[:12]}) applied")
            return 0
        refusal = state.get("last_refusal") or {}
        if refusal.get("source") == "import" and refusal.get("at", 0) >= started:
            return _fail(f"the agent refused it ({refusal.get('reason')}): "
                         f"{refusal.get('message')}")
        time.sleep(0.2)
    return _fail(f"the agent has not applied bundle {bundle.version} within {timeout:g}s; "
                 "see 'modelmon edge status' and its log")


def _serve(args: argparse.Namespace) -> int:
    import threading

    from modelmon.config import ConfigError, parse_listen
    from modelmon.exporters.edge.http_server import serve

    from .server import bundle_app

    if not args.dir.is_dir():
        return _fail(f"{args.dir}: not a directory of <group>.tar.gz bundles")
    try:
        host, port = parse_listen(args.listen, "--listen")
    except ConfigError as exc:
        return _fail(str(exc))
    httpd = serve(host, port, bundle_app(args.dir))
    print(f"serving {args.dir}/<group>.tar.gz on http://{host}:{httpd.server_port}/",
          flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        httpd.shutdown()
    return 0
