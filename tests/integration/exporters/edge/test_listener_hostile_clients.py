"""The agent's local listener under clients that stall: each stalled connection is
dropped after the client timeout, and /metrics keeps answering meanwhile."""

from __future__ import annotations

import socket
import time
import urllib.request

from prometheus_client import CollectorRegistry

from modelmon.exporters.edge import EdgeAgent, edge_config_from_mapping, http_server


def test_stalled_clients_are_dropped_and_metrics_keep_answering(tmp_path, monkeypatch, capfd):
    monkeypatch.setattr(http_server._Handler, "timeout", 0.5)
    config = edge_config_from_mapping({"edge": {
        "device_id": "press-7", "interval": "1s", "listen": "127.0.0.1:0",
        "spool": {"path": str(tmp_path / "state")},
        "remote_write": {"url": "http://127.0.0.1:9/api/v1/write"},
    }})
    agent = EdgeAgent(config, CollectorRegistry())
    agent.start(collect=False)
    stalled: list[socket.socket] = []
    try:
        port = agent.listen_port
        for _ in range(20):  # incomplete request headers, never finished
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
            stalled.append(s)
        started = time.monotonic()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
            assert answer.status == 200
        assert time.monotonic() - started < 5
        for s in stalled:  # the server hangs up on each once the timeout has passed
            s.settimeout(5)
            while chunk := s.recv(4096):  # whatever it says first, then end of stream
                assert len(chunk) < 4096
            # (without the timeout recv() raises TimeoutError here: the thread is held)
    finally:
        for s in stalled:
            s.close()
        agent.stop()
    assert "Traceback" not in capfd.readouterr().err, "stalled clients are not the device log's"
