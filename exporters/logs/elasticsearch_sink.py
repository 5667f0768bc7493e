"""The Elasticsearch sink: ``_bulk`` ``create`` with deterministic ids, every item
classified here (the client's helpers and retries are not used).

Classification of each bulk item:

- 2xx, and 409 (the id exists: an earlier attempt got through) -> delivered;
- 429, 5xx, ``es_rejected_execution_exception`` -> retried (full-jitter
  exponential backoff honouring ``Retry-After``, by the shipper);
- any other 4xx (mapping and parsing errors) -> dead-letter store.

Whole-request answers: 429 and 5xx retry the batch; 413 and 400 split it in
halves until the culprit is alone (then it is dead-lettered); 401/403/404 and
connection errors retry (configuration or availability problems that a fix
resolves, not properties of the events).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from elasticsearch import ApiError, Elasticsearch, TransportError

from modelmon.exporters.logs.sinks import (
    Item,
    ItemBatch,
    SendResult,
    parse_retry_after,
    seqs_of,
    tls_files,
)

log = logging.getLogger(__name__)

DEFAULT_INDEX = "logs-modelmon-default"  # a data stream under the built-in logs-*-* template
# What classification reads of a _bulk answer, as Logstash's output asks for it:
# the full answer repeats index, id, version and shards for every item, and
# parsing it cost the sender more than building the request.
BULK_FILTER_PATH = "errors,items.*.error,items.*.status"
_RETRY_TYPES = frozenset({"es_rejected_execution_exception", "circuit_breaking_exception"})


def make_client(
    *,
    url: str | Sequence[str] | None = None,
    hosts: Sequence[str] | None = None,
    cloud_id: str | None = None,
    api_key: str | None = None,
    username: str | None = None,
    password: str | None = None,
    ca_certs: str | None = None,
    ca_file: str | None = None,
    cert_file: str | None = None,
    key_file: str | None = None,
    verify_certs: bool = True,
    request_timeout: float = 30.0,
) -> Elasticsearch:
    """An official client with its own retries off: the shipper retries, per item.

    ``cert_file``/``key_file``: a client certificate for clusters that require
    one (``xpack.security.http.ssl.client_authentication: required``)."""
    ca_certs, cert_file, key_file = tls_files(ca_certs=ca_certs, ca_file=ca_file,
                                              cert_file=cert_file, key_file=key_file)
    if url is not None and hosts is not None:
        raise ValueError("elasticsearch: give url or hosts, not both")
    nodes = [url] if isinstance(url, str) else list(url or hosts or [])
    if cloud_id:
        if nodes:
            raise ValueError("cloud_id: give cloud_id or url/hosts, not both")
        nodes = [cloud_id_url(cloud_id)]
    if not nodes:
        raise ValueError(
            "elasticsearch: no server; set url (e.g. 'http://127.0.0.1:9200'), hosts, or cloud_id"
        )
    kwargs: dict[str, Any] = {
        "request_timeout": request_timeout,
        "max_retries": 0,
        "retry_on_status": (),
        "retry_on_timeout": False,
        "http_compress": False,
    }
    kwargs["hosts"] = nodes
    if api_key:
        kwargs["api_key"] = api_key_credentials(api_key)
    if username is not None:
        kwargs["basic_auth"] = (username, password or "")
    if ca_certs:
        kwargs["ca_certs"] = ca_certs
    if cert_file:
        kwargs["client_cert"] = cert_file
        if key_file:
            kwargs["client_key"] = key_file
    if not verify_certs:
        kwargs["verify_certs"] = False
    try:
        from elasticsearch.serializer import OrjsonSerializer

        kwargs["serializer"] = OrjsonSerializer()
    except ImportError:  # older clients: the stdlib serializer is fine
        pass
    try:
        return Elasticsearch(**kwargs)
    except ValueError as exc:  # e.g. "Could not parse URL": say which option
        raise ValueError(
            f"url: {exc}; expected e.g. 'https://es.example:9200' (or hosts, or cloud_id)"
        ) from None


def cloud_id_url(cloud_id: str) -> str:
    """The Elasticsearch URL an Elastic Cloud ID stands for, decoded as the
    official clients do: ``<name>:<base64 of host[:port]$es_uuid$kibana_uuid>``
    -> ``https://<es_uuid>.<host>:<port>`` (port 443 unless given). Decoded
    here, not by the client, so the URL takes the same TLS and auth options
    as ``url`` and a bad ID is named at start."""
    import binascii

    _, _, encoded = str(cloud_id).partition(":")
    try:
        decoded = binascii.a2b_base64(encoded.encode("ascii")).decode("ascii")
    except (binascii.Error, UnicodeError):
        decoded = ""
    host, _, rest = decoded.partition("$")
    es_uuid = rest.partition("$")[0]
    port = "443"
    if ":" in host:
        host, _, port = host.rpartition(":")
    if not host or not es_uuid or not port.isdigit():
        raise ValueError("cloud_id: not an Elastic Cloud ID (name:base64 of "
                         "host$elasticsearch-id$kibana-id); copy it from the deployment's page "
                         "in the Elastic Cloud console")
    return f"https://{es_uuid}.{host}:{int(port)}"


def api_key_credentials(api_key: str) -> str:
    """The value after ``ApiKey`` in the Authorization header: the key as
    Elasticsearch's create API key answer gives it ``encoded``, or as
    ``<id>:<api_key>`` (the form Beats and Logstash take), encoded here."""
    import base64

    if ":" in api_key:  # base64 has no ':'
        return base64.b64encode(api_key.encode()).decode("ascii")
    return api_key


class ElasticsearchSink:
    """Ships to an index or data stream with ``create`` and the spool's ids."""

    name = "elasticsearch"
    # Bulk requests in flight at once: while Elasticsearch indexes one batch the
    # next is already on the wire. Safe because every document has its own _id
    # and each request is classified on its own.
    max_in_flight = 2

    def __init__(self, *, index: str = DEFAULT_INDEX, pipeline: str | None = None,
                 client: Elasticsearch | None = None, **client_options: Any) -> None:
        self.index = index
        self.pipeline = pipeline
        self.client = client if client is not None else make_client(**client_options)

    def send(self, items: Sequence[Item]) -> SendResult:
        # The spool holds each document's JSON: the body is joined, never re-serialised.
        if isinstance(items, ItemBatch):  # the shipper's batches: ids from the rows
            prefix = items.prefix.encode()
            body = b"".join([b'{"create":{"_id":"%s%d"}}\n%s\n' % (prefix, seq, payload)
                             for seq, payload in items.rows])
        else:
            body = b"".join([b'{"create":{"_id":"%s"}}\n%s\n' % (item.id.encode(), item.source)
                             for item in items])
        try:
            kwargs: dict[str, Any] = {"operations": body, "index": self.index,
                                      "filter_path": BULK_FILTER_PATH}
            if self.pipeline:
                kwargs["pipeline"] = self.pipeline
            resp = self.client.bulk(**kwargs)
        except ApiError as exc:
            return self._whole_request_error(items, exc)
        except TransportError as exc:  # connection refused/reset, timeout
            log.debug("elasticsearch bulk: %s", exc)
            return SendResult.all_retry(items, "connection_error")
        return classify_items(items, resp.body)

    def _whole_request_error(self, items: Sequence[Item], exc: ApiError) -> SendResult:
        status = exc.meta.status
        retry_after = parse_retry_after(exc.meta.headers.get("retry-after"))
        if status == 429:
            return SendResult.all_retry(items, "throttled", retry_after)
        if status >= 500:
            return SendResult.all_retry(items, "server_error", retry_after)
        if status in (400, 413):
            label = "too_large" if status == 413 else "bad_request"
            if len(items) == 1:
                result = SendResult(result=label)
                result.add_dead(f"{status} {_error_text(exc.body)}", items[0].seq)
                return result
            half = len(items) // 2
            result = SendResult(result=label)
            result.merge(self.send(items[:half]))
            result.merge(self.send(items[half:]))
            result.result = label
            return result
        log.warning(
            "elasticsearch bulk refused with HTTP %s (%s): check url, credentials and index "
            "permissions; events stay in the spool and are retried", status, _error_text(exc.body),
        )
        return SendResult.all_retry(items, "error", retry_after)

    def close(self) -> None:
        self.client.close()


def classify_items(items: Sequence[Item], body: Any) -> SendResult:
    answers = body.get("items", []) if isinstance(body, dict) else []
    if isinstance(body, dict) and body.get("errors") is False and len(answers) == len(items):
        # Elasticsearch's own summary: every item succeeded.
        return SendResult(delivered=seqs_of(items))
    result = SendResult()
    for n, item in enumerate(items):
        if n >= len(answers):
            result.retry.append(item.seq)  # an answer we never got: send again
            continue
        answer: dict[str, Any] = next(iter(answers[n].values()), {})
        status = int(answer.get("status", 500))
        error = answer.get("error") or {}
        etype = error.get("type", "") if isinstance(error, dict) else str(error)
        if 200 <= status < 300 or status == 409:
            result.delivered.append(item.seq)
        elif status == 429 or status >= 500 or etype in _RETRY_TYPES:
            result.retry.append(item.seq)
        else:
            reason = error.get("reason", "") if isinstance(error, dict) else ""
            result.add_dead(f"{status} {etype}: {reason}".strip(), item.seq)
    if result.retry or result.dead:
        result.result = "partial"
    return result


def _error_text(body: Any) -> str:
    if isinstance(body, dict):
        err = body.get("error")
        if isinstance(err, dict):
            return f"{err.get('type', '')}: {err.get('reason', '')}"
        if err:
            return str(err)
    return str(body)[:200]
