"""modelmon serve under hostile clients: slow senders and password guessers must
not starve the scrape (loopback only, bounded loops)."""

from __future__ import annotations

import json
import socket
import statistics
import subprocess
import sys
import threading
import time

import bcrypt
import requests
import yaml

# 16 clients guessing passwords for a known and an unknown user until told to stop
# (or 120 s); prints how often each answer came.
GUESSER = """
import collections, json, os, sys, threading, time
import requests
url, stop_file = sys.argv[1], sys.argv[2]
answers = collections.Counter()
started = threading.Event()
def guess(i):
    n, deadline = 0, time.monotonic() + 120
    with requests.Session() as s:
        while not os.path.exists(stop_file) and time.monotonic() < deadline:
            n += 1
            user = "prometheus" if n % 2 else f"user{i}"
            answers[s.get(url + "/metrics", auth=(user, f"guess-{i}-{n}"), timeout=20).status_code] += 1
            started.set()
threads = [threading.Thread(target=guess, args=(i,)) for i in range(16)]
for t in threads: t.start()
started.wait(60)
print("guessing", flush=True)
for t in threads: t.join()
print(json.dumps(answers))
"""


def serve(start_server, modelmon_cmd, tmp_path, *extra: str, web: dict | None = None):
    config = ""
    if web is not None:
        (tmp_path / "web.yml").write_text(yaml.safe_dump(web))
        config = "web_config_file: web.yml\n"
    (tmp_path / "serve.yml").write_text(config + "threads: 4\n")
    return start_server([*modelmon_cmd, "serve", "--config", str(tmp_path / "serve.yml"),
                         "--listen", "127.0.0.1:{port}", *extra])


def scrape_times(url: str, n: int = 25, auth=None) -> list[float]:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        r = requests.get(f"{url}/metrics", timeout=20, auth=auth)
        times.append(time.perf_counter() - t0)
        assert r.status_code == 200, r.text
    return times


def test_slow_clients_neither_starve_the_scrape_nor_stay_past_the_bound(
        start_server, modelmon_cmd, tmp_path):
    server = serve(start_server, modelmon_cmd, tmp_path,
                   "--header-timeout", "2", "--body-timeout", "3")
    port = int(server.url.rsplit(":", 1)[1])
    opened: list[tuple[socket.socket, float, float]] = []  # socket, opened at, bound
    for _ in range(12):  # incomplete headers, trickled: a per-read timeout never fires
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
        opened.append((s, time.monotonic(), 2))
    for _ in range(12):  # a body that promised 1000 bytes and sent 10
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(b"POST /ingest HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Content-Length: 1000\r\n\r\n[{\"model\":")
        opened.append((s, time.monotonic(), 3))
    lingering = []
    for _ in range(12):  # answered with Connection: close, never read and never closed
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        lingering.append(s)
    stop = threading.Event()

    def trickle():
        while not stop.wait(0.3):
            for s, _, _ in opened[:12]:
                try:
                    s.sendall(b"X-Slow: 1\r\n")
                except OSError:
                    pass

    trickler = threading.Thread(target=trickle, daemon=True)
    trickler.start()
    try:
        times = scrape_times(server.url)
        assert statistics.median(times) < 0.1, times

        closed_after = []
        for s, at, bound in opened:
            s.settimeout(bound + 5)
            data = b""
            try:
                while chunk := s.recv(4096):
                    data += chunk
            except ConnectionResetError:
                pass  # closed while the trickler was still writing
            closed_after.append(time.monotonic() - at)
            assert data in (b"",) or data.startswith(b"HTTP/1.1 408"), data
        # Closed within the configured bound (plus the main loop's 1 s tick).
        assert max(closed_after) < 3 + 1.5, closed_after
    finally:
        stop.set()
        for s in [s for s, _, _ in opened] + lingering:
            s.close()
    assert requests.get(f"{server.url}/healthz", timeout=5).status_code == 200


def test_password_guessing_does_not_slow_an_authenticated_scrape(start_server, modelmon_cmd,
                                                                 tmp_path):
    hashed = bcrypt.hashpw(b"scrape-pw", bcrypt.gensalt(rounds=10)).decode()
    server = serve(start_server, modelmon_cmd, tmp_path,
                   web={"basic_auth_users": {"prometheus": hashed}})
    auth = ("prometheus", "scrape-pw")
    assert requests.get(f"{server.url}/metrics", auth=auth, timeout=10).status_code == 200
    stop_file = tmp_path / "stop"
    # The guessers are another process, as an attacker is (not threads sharing our GIL).
    guesser = subprocess.Popen([sys.executable, "-c", GUESSER, server.url, str(stop_file)],
                               stdout=subprocess.PIPE, text=True)
    try:
        assert guesser.stdout is not None
        assert guesser.stdout.readline() == "guessing\n"  # under way before we scrape
        times = scrape_times(server.url, auth=auth)
    finally:
        stop_file.touch()
        out, _ = guesser.communicate(timeout=60)
    answers = {int(k): v for k, v in json.loads(out).items()}
    assert statistics.median(times) < 0.1, times
    assert set(answers) <= {401, 429} and answers.get(401, 0) > 0, answers


SERVE_WITH_LIMITS = """
import sys
from modelmon.config import ServeConfig
from modelmon.exporters.service.app import create_app
from modelmon.exporters.service.http_worker import ReadLimits
from modelmon.exporters.service.wsgi import gunicorn_options, run_gunicorn
limits = ReadLimits(max_body_bytes=1 << 20, max_buffered_bytes=256 * 1024)
run_gunicorn(lambda: create_app(ServeConfig()), gunicorn_options("127.0.0.1", int(sys.argv[1]),
                                                                 limits=limits))
"""


def test_unfinished_requests_hold_bounded_memory(start_server, tmp_path):
    server = start_server([sys.executable, "-c", SERVE_WITH_LIMITS, "{port}"])
    port = int(server.url.rsplit(":", 1)[1])
    head = (b"POST /ingest HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 100000\r\n\r\n")
    held = []
    try:
        for _ in range(8):  # 8 x 60 kB of bodies that never finish: over the 256 kB budget
            s = socket.create_connection(("127.0.0.1", port))
            s.sendall(head + b" " * 60000)
            held.append(s)
        answers = []
        for s in held:
            s.settimeout(0.5)
            try:
                answers.append(s.recv(100))
            except TimeoutError:
                answers.append(b"")  # still being read: within the budget
        busy = [a for a in answers if a.startswith(b"HTTP/1.1 503")]
        assert 1 <= len(busy) <= 5, answers
        assert requests.get(f"{server.url}/metrics", timeout=5).status_code == 200
    finally:
        for s in held:
            s.close()
    time.sleep(0.5)  # the worker sees the closes
    # The budget is free again: a large request in one piece goes through.
    events = json.dumps([{"model": "m", "latency_seconds": 0.01}] * 4000)
    assert len(events) > 128 * 1024
    r = requests.post(f"{server.url}/ingest", data=events, timeout=10,
                      headers={"Content-Type": "application/json"})
    assert r.status_code == 200, r.text
