from __future__ import annotations

import base64
import time

import pytest

from modelmon.demo.processes import free_port
from modelmon.exporters.edge.prompb import encode_write_request
from modelmon.exporters.edge.remote_write import (
    Auth,
    RemoteWriteClient,
    classify_rejection,
)

BODY = encode_write_request([((("__name__", "up"), ("device", "d1")), [(1.0, 1_700_000_000_000)])])


@pytest.mark.parametrize("message,reason", [
    ("too old sample", "too_old"),
    ("out of bounds", "too_old"),
    ("out of order sample", "out_of_order"),
    ("err-mimir-sample-out-of-order: the sample has been rejected", "out_of_order"),
    ("duplicate sample for timestamp", "duplicate"),
    ("invalid label name", None),
])
def test_rejections_of_old_samples_are_recognised(message: str, reason: str | None) -> None:
    assert classify_rejection(message) == reason


def test_sends_snappy_protobuf_with_the_remote_write_headers(receiver) -> None:
    client = RemoteWriteClient(receiver.url, auth=Auth(username="edge", password="s3cret"))
    result = client.send(BODY)
    assert result.outcome == "success" and result.status == 204
    headers = receiver.requests[0]["headers"]
    assert headers["Content-Encoding"] == "snappy"
    assert headers["Content-Type"] == "application/x-protobuf"
    assert headers["X-Prometheus-Remote-Write-Version"] == "0.1.0"
    assert headers["Authorization"] == "Basic " + base64.b64encode(b"edge:s3cret").decode()
    assert receiver.samples("up") == [(1.0, 1_700_000_000_000)]


def test_bearer_token_is_read_from_its_file_at_each_send(receiver, tmp_path) -> None:
    token = tmp_path / "token"
    token.write_text("first\n")
    client = RemoteWriteClient(receiver.url, auth=Auth(bearer_token_file=token))
    client.send(BODY)
    token.write_text("rotated\n")
    client.send(BODY)
    assert [r["headers"]["Authorization"] for r in receiver.requests] == [
        "Bearer first", "Bearer rotated"]


@pytest.mark.parametrize("status,message,outcome,reason", [
    (503, "unavailable", "retry", "http_503"),
    (500, "internal", "retry", "http_500"),
    (429, "slow down", "retry", "http_429"),
    # What Prometheus 2.42 answers for a sample older than its out-of-order
    # window: a 5xx is retried whatever its body says (remote-write 1.0 MUST).
    (500, "too old sample", "retry", "http_500"),
    (400, "out of order sample", "rejected", "out_of_order"),
    (400, "invalid label", "dropped", "http_400"),
    # A credential fault, not a bad batch: held until the credentials change (auth).
    (401, "unauthorized", "unauthorized", "http_401"),
    (403, "forbidden", "unauthorized", "http_403"),
    (404, "not found", "dropped", "http_404"),
])
def test_answers_are_classified(receiver, status, message, outcome, reason) -> None:
    receiver.answers.append((status, message, {}))
    result = RemoteWriteClient(receiver.url).send(BODY)
    assert (result.outcome, result.reason, result.status) == (outcome, reason, status)


def test_retry_after_is_reported(receiver) -> None:
    receiver.answers.append((429, "slow down", {"Retry-After": "7"}))
    assert RemoteWriteClient(receiver.url).send(BODY).retry_after == 7.0


def test_unreachable_receiver_is_a_retry_not_an_exception() -> None:
    client = RemoteWriteClient(f"http://127.0.0.1:{free_port()}/api/v1/write", timeout=2)
    start = time.monotonic()
    result = client.send(BODY)
    assert (result.outcome, result.reason) == ("retry", "connection")
    assert time.monotonic() - start < 2
