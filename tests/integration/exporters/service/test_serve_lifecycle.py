"""A real ``modelmon serve`` (gunicorn) across a restart and under hostile bodies.

Issue 12 finding 9: predictions still queued in the worker when it got SIGTERM
must reach the feedback store, so a label sent after the restart joins them.
Finding 5 over a real socket: a chunked body over the limit is a 413.
"""

from __future__ import annotations

import http.client
import json
import signal
import threading
import time
import urllib.parse

import requests
import yaml
from prometheus_client.parser import text_string_to_metric_families


def _serve(start_server, modelmon_cmd, tmp_path):
    config = {
        "threads": 2,
        "quality": {"models": {"fraud": {"options": {"feedback_db": "fb-{model}-{version}.sqlite"}}}},
    }
    (tmp_path / "serve.yml").write_text(yaml.safe_dump(config))
    return start_server([*modelmon_cmd, "serve", "--config", str(tmp_path / "serve.yml"),
                         "--listen", "127.0.0.1:{port}"])


def _feedback_counts(url: str) -> tuple[float, float]:
    body = requests.get(f"{url}/metrics", timeout=30).text
    joined = unmatched = 0.0
    for family in text_string_to_metric_families(body):
        for s in family.samples:
            if s.labels.get("model") != "fraud":
                continue
            if s.name == "modelmon_feedback_total":
                joined += s.value
            elif s.name == "modelmon_feedback_unmatched_total":
                unmatched += s.value
    return joined, unmatched


def test_predictions_queued_at_sigterm_join_their_labels_after_a_restart(
        start_server, modelmon_cmd, tmp_path):
    server = _serve(start_server, modelmon_cmd, tmp_path)
    acked: list[str] = []
    stop = threading.Event()

    def predict() -> None:
        # A model server sending predictions when the exporter is restarted:
        # the last ones answered 200 are still in the worker's queue (written
        # every 0.2 s) when SIGTERM arrives.
        session, i = requests.Session(), 0
        while not stop.is_set():
            ids = [f"r{i + j}" for j in range(20)]
            events = [{"type": "prediction", "model": "fraud", "version": "1",
                       "prediction": "legit", "request_id": r} for r in ids]
            try:
                answer = session.post(f"{server.url}/ingest", json=events, timeout=10)
            except requests.RequestException:
                return
            if answer.status_code == 200:
                acked.extend(ids)
            i += 20

    sender = threading.Thread(target=predict)
    sender.start()
    while len(acked) < 3000:
        time.sleep(0.05)
    server.proc.send_signal(signal.SIGTERM)
    code = server.proc.wait(30)
    stop.set()
    sender.join(30)
    assert code == 0, server.output()

    server = _serve(start_server, modelmon_cmd, tmp_path)
    labels = [{"type": "feedback", "model": "fraud", "version": "1", "label": "legit",
               "request_id": r} for r in acked]
    answer = requests.post(f"{server.url}/ingest", json=labels, timeout=60)
    assert answer.status_code == 200, answer.text
    deadline = time.monotonic() + 60
    joined, unmatched = _feedback_counts(server.url)
    while joined + unmatched < len(acked) and time.monotonic() < deadline:
        time.sleep(0.3)
        joined, unmatched = _feedback_counts(server.url)
    assert (joined, unmatched) == (len(acked), 0), server.output()


def test_a_chunked_body_over_the_limit_is_413_over_a_real_socket(
        start_server, modelmon_cmd, tmp_path):
    (tmp_path / "serve.yml").write_text(yaml.safe_dump({"ingest": {"max_body_bytes": "1MiB"}}))
    server = start_server([*modelmon_cmd, "serve", "--config", str(tmp_path / "serve.yml"),
                           "--listen", "127.0.0.1:{port}"])
    url = urllib.parse.urlsplit(server.url)
    event = json.dumps({"model": "m", "latency_seconds": 0.1}).encode()

    def chunks():
        yield b"["
        sent = 0
        while sent < 10 * 1024 * 1024:  # 10 MB, no Content-Length
            yield event + b","
            sent += len(event) + 1
        yield event + b"]"

    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
    try:
        try:
            conn.request("POST", "/ingest", body=chunks(), encode_chunked=True,
                         headers={"Content-Type": "application/json"})
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may answer and close before the client has sent it all
        answer = conn.getresponse()
        status, body = answer.status, answer.read()
    finally:
        conn.close()
    assert status == 413, body[:300]
    assert json.loads(body)["errors"][0].startswith("body")
    assert requests.get(f"{server.url}/metrics", timeout=30).status_code == 200
