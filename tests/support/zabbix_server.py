"""A real Zabbix 6.0 (Debian's ``zabbix-server-pgsql`` + ``zabbix-frontend-php``) on loopback.

Three processes, all private to one temp dir and on free loopback ports:

- PostgreSQL 15: a fresh cluster (``initdb`` + ``pg_ctl``), run as ``nobody``
  when we are root (``initdb`` refuses root), loaded with Zabbix's schema;
- ``zabbix_server`` with a config of ours: a 1 s config-cache refresh so the
  imported template and its discovered items are polled within seconds;
- the frontend's JSON-RPC API under PHP's built-in web server. Debian's frontend
  reads its DB settings from the fixed path ``/etc/zabbix/zabbix.conf.php``;
  rather than writing a system file, the frontend is copied (35 MB) and the
  copy's ``CConfigFile::CONFIG_FILE_PATH`` points into the temp dir.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import pwd
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from modelmon.demo.processes import find_binary, free_port, stop_processes

# Debian bookworm ships 15; other releases another major version in the same layout.
PG_BIN = max(Path("/usr/lib/postgresql").glob("*/bin"),
             key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
             default=Path("/usr/lib/postgresql/15/bin"))
SCHEMA_DIR = Path("/usr/share/zabbix-server-pgsql")
FRONTEND_DIR = Path("/usr/share/zabbix")


def missing() -> str | None:
    """Why Zabbix cannot start here (None when it can)."""
    for path in (PG_BIN / "initdb", SCHEMA_DIR / "schema.sql.gz", FRONTEND_DIR / "api_jsonrpc.php"):
        if not path.exists():
            return f"{path} is missing (Debian packages postgresql, zabbix-server-pgsql, " \
                   "zabbix-frontend-php; tests/run.sh installs them)"
    for binary in ("zabbix_server", "php"):
        if not find_binary(binary) and not Path(f"/usr/sbin/{binary}").exists():
            return f"{binary} is not installed"
    return None


class ZabbixAPI:
    """A minimal JSON-RPC client of the Zabbix 6.0 API."""

    def __init__(self, url: str) -> None:
        self.url, self.token, self._id = url, "", 0

    def call(self, method: str, params: Any) -> Any:
        self._id += 1
        body: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "params": params,
                                "id": self._id}
        if self.token and method not in ("apiinfo.version", "user.login"):
            body["auth"] = self.token
        r = requests.post(self.url, json=body, timeout=120,
                          headers={"Content-Type": "application/json-rpc"})
        r.raise_for_status()
        answer = r.json()
        if "error" in answer:
            raise RuntimeError(f"Zabbix API {method}: {answer['error']}")
        return answer["result"]

    def login(self, user: str = "Admin", password: str = "zabbix") -> None:
        self.token = self.call("user.login", {"username": user, "password": password})


@dataclass
class ZabbixStack:
    api: ZabbixAPI
    server_log: Path

    def log_tail(self, lines: int = 40) -> str:
        text = "".join(p.read_text(errors="replace") for p in (
            self.server_log.with_suffix(".stderr"), self.server_log) if p.exists())
        return "\n".join(text.splitlines()[-lines:])


def _as_postgres_user(cmd: list[str], user: str | None) -> list[str]:
    return ["runuser", "-u", user, "--", *cmd] if user else cmd


def _start_postgres(root: Path, user: str | None) -> tuple[subprocess.Popen[bytes], int]:
    data, port = root / "pgdata", free_port()
    data.mkdir()
    if user:
        pw = pwd.getpwnam(user)
        os.chown(root, pw.pw_uid, pw.pw_gid)  # the socket dir and the log
        os.chown(data, pw.pw_uid, pw.pw_gid)
    subprocess.run(_as_postgres_user(
        [str(PG_BIN / "initdb"), "-D", str(data), "-U", "zabbix", "--auth=trust",
         "--no-sync", "-E", "UTF8", "--locale=C"], user), check=True, capture_output=True)
    proc = subprocess.Popen(_as_postgres_user(
        [str(PG_BIN / "postgres"), "-D", str(data), "-p", str(port), "-k", str(root),
         "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off",
         "-c", "synchronous_commit=off", "-c", "full_page_writes=off"], user),
        stdout=subprocess.DEVNULL, stderr=open(root / "postgres.log", "wb"))
    deadline = time.monotonic() + 30
    while subprocess.run(["pg_isready", "-h", "127.0.0.1", "-p", str(port)],
                         capture_output=True).returncode != 0:
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("PostgreSQL did not start: "
                               + (root / "postgres.log").read_text(errors="replace")[-2000:])
        time.sleep(0.2)
    return proc, port


def _load_schema(port: int) -> None:
    psql = ["psql", "-h", "127.0.0.1", "-p", str(port), "-U", "zabbix", "-q",
            "-v", "ON_ERROR_STOP=1"]
    subprocess.run([*psql, "-d", "postgres", "-c", "CREATE DATABASE zabbix"], check=True,
                   capture_output=True)
    sql = b"".join(gzip.decompress((SCHEMA_DIR / f"{part}.sql.gz").read_bytes())
                   for part in ("schema", "images", "data"))
    # Foreign-key triggers off while loading Zabbix's own consistent data: 2x faster.
    subprocess.run([*psql, "-d", "zabbix"],
                   input=b"SET session_replication_role = replica;\n" + sql,
                   check=True, capture_output=True)


def _trapper_port() -> int:
    """A free port Zabbix accepts: its ListenPort must be within 1024-32767, below
    Linux's ephemeral range where free_port() looks."""
    for port in random.sample(range(20000, 32768), 200):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in 20000-32767 for zabbix_server's ListenPort")


def _start_server(root: Path, db_port: int) -> tuple[subprocess.Popen[bytes], Path]:
    log = root / "zabbix_server.log"
    settings = {
        "ListenIP": "127.0.0.1", "ListenPort": _trapper_port(), "LogFile": log, "LogFileSize": 0,
        "PidFile": root / "zabbix_server.pid", "SocketDir": root, "DBHost": "127.0.0.1",
        "DBPort": db_port, "DBName": "zabbix", "DBUser": "zabbix", "AllowRoot": 1,
        # Pick up the template and the items LLD creates within a second, not a minute.
        "CacheUpdateFrequency": 1, "StartPollers": 2, "StartPollersUnreachable": 1,
        "StartPreprocessors": 2, "StartLLDProcessors": 1, "StartHistoryPollers": 1,
        "StartTrappers": 1, "StartPingers": 0, "StartDiscoverers": 0, "StartHTTPPollers": 0,
        "StartDBSyncers": 1, "StartAlerters": 1, "StartEscalators": 1, "StartTimers": 1,
        "StartReportWriters": 0, "HousekeepingFrequency": 0, "Timeout": 10, "DebugLevel": 3,
    }
    conf = root / "zabbix_server.conf"
    conf.write_text("".join(f"{k}={v}\n" for k, v in settings.items()))
    binary = find_binary("zabbix_server") or "/usr/sbin/zabbix_server"
    # Config errors go to stderr before the log file opens: keep them beside it.
    # Its own process group: see _stop_server.
    proc = subprocess.Popen([binary, "-f", "-c", str(conf)], stdout=subprocess.DEVNULL,
                            stderr=open(root / "zabbix_server.stderr", "wb"),
                            start_new_session=True)
    return proc, log


def _stop_server(proc: subprocess.Popen[bytes]) -> None:
    """Stop zabbix_server before its database: its HA manager child outlives a SIGTERM
    to the main process when the database goes first, so the whole group is killed."""
    stop_processes([proc])
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


def _start_frontend(root: Path, db_port: int) -> tuple[subprocess.Popen[bytes], str]:
    web = root / "frontend"
    shutil.copytree(FRONTEND_DIR, web, symlinks=True)
    conf = root / "zabbix.conf.php"
    conf.write_text(
        "<?php\n$DB['TYPE'] = 'POSTGRESQL';\n$DB['SERVER'] = '127.0.0.1';\n"
        f"$DB['PORT'] = '{db_port}';\n$DB['DATABASE'] = 'zabbix';\n$DB['USER'] = 'zabbix';\n"
        "$DB['PASSWORD'] = '';\n$DB['SCHEMA'] = '';\n$DB['ENCRYPTION'] = false;\n"
        "$DB['KEY_FILE'] = '';\n$DB['CERT_FILE'] = '';\n$DB['CA_FILE'] = '';\n"
        "$DB['VERIFY_HOST'] = false;\n$DB['CIPHER_LIST'] = '';\n$DB['VAULT_URL'] = '';\n"
        "$DB['VAULT_DB_PATH'] = '';\n$DB['VAULT_TOKEN'] = '';\n$DB['DOUBLE_IEEE754'] = true;\n"
        "$ZBX_SERVER_NAME = 'modelmon test';\n$IMAGE_FORMAT_DEFAULT = IMAGE_FORMAT_PNG;\n"
    )
    config_class = web / "include/classes/core/CConfigFile.php"
    text = config_class.read_text()
    fixed = "const CONFIG_FILE_PATH = '/etc/zabbix/zabbix.conf.php';"
    if fixed not in text:
        raise RuntimeError(f"{config_class}: expected {fixed!r} (Debian's frontend) to redirect")
    config_class.write_text(text.replace(fixed, f"const CONFIG_FILE_PATH = '{conf}';"))
    port = free_port()
    proc = subprocess.Popen(
        ["php", "-d", "memory_limit=1G", "-d", "post_max_size=64M", "-d",
         "max_execution_time=600", "-S", f"127.0.0.1:{port}", "-t", str(web)],
        stdout=subprocess.DEVNULL, stderr=open(root / "php.log", "wb"))
    return proc, f"http://127.0.0.1:{port}/api_jsonrpc.php"


@contextlib.contextmanager
def zabbix_stack(root: Path) -> Iterator[ZabbixStack]:
    """PostgreSQL, zabbix_server and the API, started in ``root``; stopped on exit."""
    user = "nobody" if os.geteuid() == 0 else None
    procs: list[subprocess.Popen[bytes]] = []
    server: subprocess.Popen[bytes] | None = None
    # pytest's tmp_path is root-only (0700): the cluster of `nobody` lives beside it.
    pg_root = Path(tempfile.mkdtemp(prefix="modelmon-zabbix-pg-")) if user else root / "pg"
    pg_root.mkdir(exist_ok=True)
    try:
        pg, db_port = _start_postgres(pg_root, user)
        procs.append(pg)
        _load_schema(db_port)
        server, log = _start_server(root, db_port)
        frontend, url = _start_frontend(root, db_port)
        procs.append(frontend)
        api = ZabbixAPI(url)
        deadline = time.monotonic() + 30
        while True:
            try:
                api.call("apiinfo.version", {})
                break
            except (requests.RequestException, ValueError):
                if time.monotonic() > deadline or frontend.poll() is not None:
                    raise
                time.sleep(0.2)
        api.login()
        yield ZabbixStack(api, log)
    finally:
        if server is not None:
            _stop_server(server)
        stop_processes(list(reversed(procs)))
        if user:
            shutil.rmtree(pg_root, ignore_errors=True)
