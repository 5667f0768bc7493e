"""``modelmon logs``: set up Elasticsearch, inspect the spool, inspect and replay
dead letters."""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from modelmon.config import ConfigError, load_yaml
from modelmon.hookspecs import hookimpl


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("logs", help="log shipping: set up Elasticsearch, spool status, "
                       "dead letters")
    p.set_defaults(func=None, _parser=p)
    logs = p.add_subparsers(dest="logs_command", metavar="SUBCOMMAND")

    es = logs.add_parser("setup-es", help="install the index template and ILM policy")
    _es_args(es)
    es.add_argument("--template", default="modelmon-logs", help="index template name")
    es.add_argument("--index-pattern", default="logs-modelmon-*",
                    help="data streams the template applies to (default logs-modelmon-*)")
    es.add_argument("--policy", default="modelmon-logs", help="ILM policy name")
    es.add_argument("--rollover-max-age", default="1d")
    es.add_argument("--rollover-max-size", default="50gb")
    es.add_argument("--delete-after", default="30d", help="delete indices this old (30d)")
    es.set_defaults(func=run_setup_es)

    status = logs.add_parser("status", help="spool counters per slot (works while running)")
    _spool_args(status)
    status.add_argument("--json", action="store_true", help="print JSON")
    status.set_defaults(func=run_status)

    dl = logs.add_parser("dead-letter", help="inspect, replay or purge dead letters")
    dl.set_defaults(func=None, _parser=dl)
    dls = dl.add_subparsers(dest="dead_letter_command", metavar="ACTION")
    ls = dls.add_parser("list", help="list dead letters (works while the shipper runs)")
    _spool_args(ls)
    ls.add_argument("--limit", type=int, default=50, help="at most this many (50)")
    ls.add_argument("--json", action="store_true", help="print JSON lines with the documents")
    ls.set_defaults(func=run_dl_list)
    for name, helptext, func in (
        ("replay", "move dead letters back to the queue (stop the shipper first)", run_dl_replay),
        ("purge", "delete dead letters for good (stop the shipper first)", run_dl_purge),
    ):
        action = dls.add_parser(name, help=helptext)
        _spool_args(action)
        action.add_argument("--seq", type=int, action="append",
                            help="only this seq (repeatable); default: all")
        action.set_defaults(func=func)


def _spool_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--spool-dir", type=Path, help="the shipper's spool_dir (default: "
                   "logs.spool_dir from --config, else ~/.local/state/modelmon/logs)")
    p.add_argument("--config", type=Path, help="modelmon config file with a logs: section")


def _es_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=Path, help="take the connection from logs.elasticsearch")
    p.add_argument("--url", action="append", help="Elasticsearch URL (repeatable)")
    p.add_argument("--cloud-id", help="Elastic Cloud id")
    p.add_argument("--api-key", help="API key (base64 id:key)")
    p.add_argument("--username", help="basic auth user")
    p.add_argument("--password", help="basic auth password")
    p.add_argument("--ca-certs", help="CA bundle for TLS")


def _logs_section(config: Path | None) -> dict[str, Any]:
    if config is None:
        return {}
    section = load_yaml(config).get("logs") or {}
    if not isinstance(section, dict):
        raise ConfigError(f"config file {config}: logs: expected a mapping")
    return section


def _spool_root(args: argparse.Namespace) -> Path:
    if args.spool_dir is not None:
        return Path(args.spool_dir)
    section = _logs_section(args.config)
    if section.get("spool_dir"):
        path = Path(str(section["spool_dir"])).expanduser()
        return path if path.is_absolute() else Path(args.config).parent / path
    from modelmon.exporters.logs.shipper import default_spool_dir

    return default_spool_dir()


def _cipher(args: argparse.Namespace) -> Any:
    """The SpoolCipher of logs.spool.encryption in --config, or None."""
    spool = _logs_section(args.config).get("spool") or {}
    if not isinstance(spool, dict) or spool.get("encryption") is None:
        return None
    from modelmon.spool.keys import cipher_from_config, encryption_section

    field = "logs.spool.encryption"
    return cipher_from_config(encryption_section(spool["encryption"], field,
                                                 Path(args.config).parent), field)


def _slots(root: Path) -> Iterator[Path]:
    if (root / "spool.db").exists():
        yield root  # a bare spool directory (the edge agent's, or a Spool used directly)
    yield from sorted(p for p in root.glob("slot-*") if (p / "spool.db").exists())


def _read_only(slot: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{slot / 'spool.db'}?mode=ro", uri=True)


def run_setup_es(args: argparse.Namespace) -> int:
    from modelmon.exporters.logs.config import sink_options
    from modelmon.exporters.logs.elasticsearch_sink import make_client
    from modelmon.exporters.logs.es_setup import install

    options = sink_options("elasticsearch", _logs_section(args.config),
                           args.config.parent if args.config else None)
    for key in ("url", "cloud_id", "api_key", "username", "password", "ca_certs"):
        if getattr(args, key) is not None:
            options[key] = getattr(args, key)
    options.pop("index", None)
    options.pop("pipeline", None)
    try:
        client = make_client(**options)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"logs setup-es: {exc}") from None
    done = install(client, template=args.template, index_pattern=args.index_pattern,
                   policy=args.policy, rollover_max_age=args.rollover_max_age,
                   rollover_max_size=args.rollover_max_size, delete_after=args.delete_after)
    print(f"installed ILM policy {done['policy']!r} and index template {done['template']!r} "
          f"for data streams {done['index_pattern']!r}")
    return 0


def run_status(args: argparse.Namespace) -> int:
    from modelmon.spool import Ledger  # lazily: modelmon --help stays light

    root = _spool_root(args)
    rows = []
    for slot in _slots(root):
        conn = _read_only(slot)
        try:
            ledger = Ledger.from_rows(
                conn.execute("SELECT name, records, items, bytes FROM counters"))
            dead = conn.execute("SELECT COUNT(*) FROM dead_letters").fetchone()[0]
            oldest = conn.execute("SELECT MIN(created) FROM records").fetchone()[0]
        finally:
            conn.close()
        rows.append({
            "slot": str(slot), "accepted": ledger.accepted.records,
            "delivered": ledger.delivered.records,
            "dropped": {reason: t.records for reason, t in ledger.dropped.items()},
            "dead_lettered": ledger.dead_lettered.records,
            "pending": ledger.pending().records,
            "dead_letters_stored": dead, "oldest_pending_created": oldest,
        })
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print(f"no spool under {root}")
        return 0
    for r in rows:
        print(f"{r['slot']}: pending {r['pending']}, accepted {r['accepted']}, delivered "
              f"{r['delivered']}, dropped {r['dropped'] or 0}, dead-lettered "
              f"{r['dead_lettered']} ({r['dead_letters_stored']} stored)")
    print("(events still in a running shipper's journal are not counted yet)")
    return 0


def run_dl_list(args: argparse.Namespace) -> int:
    root = _spool_root(args)
    cipher = _cipher(args)
    shown = 0
    for slot in _slots(root):
        conn = _read_only(slot)
        try:
            rows = conn.execute(
                "SELECT seq, created, dead_at, reason, payload FROM dead_letters ORDER BY seq "
                "LIMIT ?", (args.limit - shown,)).fetchall()
        finally:
            conn.close()
        for seq, created, dead_at, reason, payload in rows:
            shown += 1
            if cipher is not None:  # an encrypted spool (logs.spool.encryption)
                from modelmon.spool.crypto import Undecryptable

                try:
                    payload = cipher.open(payload)
                except Undecryptable as exc:
                    payload = f"(encrypted: {exc})".encode()
            if args.json:
                print(json.dumps({"slot": slot.name, "seq": seq, "created": created,
                                  "dead_at": dead_at, "reason": reason,
                                  "document": payload.decode("utf-8", "replace")}))
            else:
                print(f"{slot.name} seq={seq} reason={reason}\n    "
                      f"{payload[:300].decode('utf-8', 'replace')}")
        if shown >= args.limit:
            break
    if not shown and not args.json:
        print(f"no dead letters under {root}")
    return 0


def _each_spool(args: argparse.Namespace) -> Iterator[Any]:
    from modelmon.spool import Spool, SpoolKeyMismatch, SpoolLocked

    cipher = _cipher(args)
    for slot in list(_slots(_spool_root(args))):
        try:
            spool = Spool(slot, max_bytes=1 << 62, max_age=None, cipher=cipher)
        except SpoolKeyMismatch as exc:
            raise ConfigError(f"logs.spool.encryption: {exc} (give --config with the keys)"
                              ) from None
        except SpoolLocked:
            raise SpoolLocked(
                f"{slot} belongs to a running shipper; stop the model server or "
                "'modelmon serve' that owns it, then run this again"
            ) from None
        try:
            yield slot, spool
        finally:
            spool.close()


def _owned(run: Any) -> Any:
    def wrapper(args: argparse.Namespace) -> int:
        from modelmon.spool import SpoolLocked

        try:
            return int(run(args))
        except SpoolLocked as exc:
            print(f"modelmon: {exc}", file=sys.stderr)
            return 1

    return wrapper


@_owned
def run_dl_replay(args: argparse.Namespace) -> int:
    total = 0
    for slot, spool in _each_spool(args):
        moved = spool.replay_dead_letters(args.seq)
        total += moved
        if moved:
            print(f"{slot.name}: {moved} dead letter(s) back in the queue")
    print(f"replayed {total}; the shipper sends them when it next runs")
    return 0


@_owned
def run_dl_purge(args: argparse.Namespace) -> int:
    total = 0
    for _, spool in _each_spool(args):
        total += spool.purge_dead_letters(args.seq)
    print(f"purged {total} dead letter(s)")
    return 0


@hookimpl
def modelmon_register_commands(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    register(subparsers)
