"""Test servers for the wire contracts we cannot run for real here.

``EsTestServer`` implements what the shipper and the official client rely on
in Elasticsearch's HTTP API, faithfully: the ``X-Elastic-Product`` header the
client checks, NDJSON ``_bulk`` (action/source line pairs, per-item results
in order), ``create`` with 409 ``version_conflict_engine_exception`` on an
existing ``_id``, data streams that accept only ``create``, dynamic mapping
conflicts (an object where a scalar was mapped) and values that the explicit
mappings of an installed index template cannot parse (``support.es_mapping``;
``strict_mappings`` also refuses what Elasticsearch would coerce) as per-item
400 ``document_parsing_exception``, 413 above ``http.max_content_length``,
``filter_path`` on every answer (the Logstash output asks ``_bulk`` for
``errors,items.*.error,items.*.status`` only), and scripted faults: whole-request 429/5xx with ``Retry-After``, per-item errors,
closing the connection after committing a batch, refusing connections.

With ``api_keys`` (id -> key) set, every request must carry ``Authorization:
ApiKey <base64 of id:key>`` of one of them, as Elasticsearch with security on:
any other is answered 401 ``security_exception`` with ``WWW-Authenticate``.

``JsonLinesServer`` is a Logstash ``tcp`` input with the ``json_lines`` codec.
"""

from __future__ import annotations

import collections
import json
import socket
import socketserver
import sys
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import orjson

from support.es_mapping import mapping_errors, template_mappings

ItemFault = Callable[[str, str, Any], "tuple[int, str, str] | None"]


class EsTestServer:
    def __init__(self, max_content_length: int = 100 * 1024 * 1024) -> None:
        self.max_content_length = max_content_length
        self.lock = threading.Lock()
        # index -> _id -> the source as sent. Bytes, not parsed dicts: millions of
        # stored dicts would make every garbage collection walk them all (8 us a
        # document at benchmark volumes); ``docs()`` parses on demand.
        self.indices: dict[str, dict[str, bytes]] = {}
        self.mappings: dict[str, dict[str, str]] = {}
        # Document shapes already mapped without conflict: skip the walk (speed only).
        self.shapes: dict[str, set[Any]] = {}
        self.templates: dict[str, Any] = {}
        self.ilm_policies: dict[str, Any] = {}
        self.created_ids: list[tuple[str, str]] = []  # every successful create, in order
        self.bulk_requests = 0
        # Scripted faults, consumed in order.
        self.responses: collections.deque[tuple[int, dict[str, str], Any]] = collections.deque()
        self.close_after_commit = 0
        self.item_fault: ItemFault | None = None
        self.refuse = False  # flapping: drop connections without answering
        self.strict_mappings = False  # no coercion by template mappings ("1.5" into a double)
        self.api_keys: dict[str, str] | None = None  # id -> key; None: security off
        self.unauthenticated = 0  # requests answered 401
        self._httpd = _QuietServer(("127.0.0.1", 0), _make_handler(self))
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def start(self) -> EsTestServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def docs(self, index: str) -> dict[str, Any]:
        with self.lock:
            stored = dict(self.indices.get(index, {}))
        return {doc_id: orjson.loads(source) for doc_id, source in stored.items()}

    def count(self, index: str) -> int:
        with self.lock:
            return len(self.indices.get(index, {}))

    def is_data_stream(self, index: str) -> bool:
        if index.startswith("logs-") and index.count("-") >= 2:
            return True  # Elasticsearch's built-in logs-*-* template
        for template in self.templates.values():
            if "data_stream" in template and any(
                _glob(p, index) for p in template.get("index_patterns", [])
            ):
                return True
        return False

    # -- _bulk ------------------------------------------------------------------

    def bulk(self, default_index: str | None, body: bytes, lean: bool = False
             ) -> tuple[int, Any]:
        """``lean``: answer what ``filter_path=errors,items.*.error,items.*.status``
        keeps, built directly (filtering 2,000 full items cost more than indexing)."""
        lines = body.split(b"\n")
        if lines and lines[-1] == b"":
            lines.pop()
        else:
            return 400, _error("illegal_argument_exception",
                               "The bulk request must be terminated by a newline [\\n]")
        items = []
        errors = False
        i = 0
        with self.lock:
            self.bulk_requests += 1
            while i < len(lines):
                try:
                    action = orjson.loads(lines[i])
                    (op, meta), = action.items()
                except (ValueError, AttributeError):
                    return 400, _error("x_content_parse_exception",
                                       f"[1:1] Malformed action/metadata line [{i + 1}]")
                if op not in ("create", "index", "update", "delete"):
                    return 400, _error("illegal_argument_exception",
                                       f"Malformed action/metadata line [{i + 1}], expected "
                                       f"one of [create, delete, index, update] but found [{op}]")
                index = meta.get("_index", default_index)
                doc_id = meta.get("_id")
                source_line = lines[i + 1] if op != "delete" and i + 1 < len(lines) else b""
                i += 1 if op == "delete" else 2
                item = self._one(op, index, doc_id, source_line, lean)
                errors |= "error" in item
                items.append({op: item})
        if lean:
            return 200, {"errors": errors, "items": items}
        return 200, {"took": 1, "errors": errors, "items": items}

    def _one(self, op: str, index: str | None, doc_id: str | None, line: bytes,
             lean: bool = False) -> dict[str, Any]:
        item = self._index_one(op, index, doc_id, line, lean)
        if lean and "error" in item:
            return {"status": item["status"], "error": item["error"]}
        return item

    def _index_one(self, op: str, index: str | None, doc_id: str | None, line: bytes,
                   lean: bool) -> dict[str, Any]:
        if index is None:
            return _item_error("", doc_id, 400, "action_request_validation_exception",
                               "Validation Failed: 1: index is missing;")
        if op not in ("create", "index"):
            return _item_error(index, doc_id, 400, "illegal_argument_exception",
                               f"{op} is not supported by this test server")
        if op == "index" and self.is_data_stream(index):
            return _item_error(index, doc_id, 400, "illegal_argument_exception",
                               f"only write ops with an op_type of create are allowed in data "
                               f"streams [{index}]")
        try:
            source = orjson.loads(line)
            if not isinstance(source, dict):
                raise ValueError("not an object")
        except ValueError:
            return _item_error(index, doc_id, 400, "document_parsing_exception",
                               "[1:1] failed to parse: not a JSON object")
        if doc_id is None:
            doc_id = f"auto-{len(self.created_ids)}"
        if self.item_fault is not None:
            fault = self.item_fault(index, doc_id, source)
            if fault is not None:
                return _item_error(index, doc_id, *fault)
        docs = self.indices.setdefault(index, {})
        if op == "create" and doc_id in docs:
            return _item_error(index, doc_id, 409, "version_conflict_engine_exception",
                               f"[{doc_id}]: version conflict, document already exists "
                               "(current version [1])")
        explicit = template_mappings(self.templates, index) if self.templates else None
        if explicit is not None:
            refused = mapping_errors(explicit, source, strict=self.strict_mappings)
            if refused:
                return _item_error(index, doc_id, 400, "document_parsing_exception",
                                   f"[1:1] {refused[0]}")
        shape = _shape(source)
        known = self.shapes.setdefault(index, set())
        conflict = None if shape in known else _map(self.mappings.setdefault(index, {}),
                                                       source, "")
        if conflict is None:
            known.add(shape)
        if conflict:
            return _item_error(index, doc_id, 400, "document_parsing_exception", conflict)
        docs[doc_id] = line
        self.created_ids.append((index, doc_id))
        if lean:
            return {"status": 201}
        return {"_index": index, "_id": doc_id, "_version": 1, "result": "created",
                "_shards": {"total": 1, "successful": 1, "failed": 0},
                "_seq_no": len(self.created_ids) - 1, "_primary_term": 1, "status": 201}


def _api_key_valid(keys: dict[str, str], header: str | None) -> bool:
    """``Authorization: ApiKey base64(id:key)`` naming a known id with its key."""
    import base64
    import binascii

    scheme, _, value = (header or "").partition(" ")
    if scheme != "ApiKey":
        return False
    try:
        key_id, _, key = base64.b64decode(value.strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return False
    return key_id in keys and keys[key_id] == key


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients killed mid-request (the chaos loop) reset connections: expected.
        exc = sys.exc_info()[1]
        if not isinstance(exc, ConnectionError | OSError):
            super().handle_error(request, client_address)


def _shape(doc: dict[str, Any]) -> Any:
    out = []
    for key, value in doc.items():
        out.append((key, _shape(value)) if type(value) is dict else key)
    return tuple(out)


def _map(mapping: dict[str, str], doc: dict[str, Any], prefix: str) -> str | None:
    """Dynamic mapping: the first type seen for a field sticks."""
    for key, value in doc.items():
        path = prefix + key
        kind = "object" if isinstance(value, dict) else "scalar"
        have = mapping.setdefault(path, kind)
        if have != kind:
            return (f"[1:1] failed to parse field [{path}] of type "
                    f"[{'object' if have == 'object' else 'keyword'}] in document")
        if kind == "object":
            err = _map(mapping, value, path + ".")
            if err:
                return err
    return None


_NOTHING = object()
# What Logstash's output (and modelmon's sink) asks of a _bulk answer; the
# server builds exactly that answer instead of filtering the full one.
_LEAN_BULK_FILTER = {"errors", "items.*.error", "items.*.status"}


def filter_path(value: Any, spec: str | None) -> Any:
    """Elasticsearch's ``filter_path``: keep only the comma-separated dotted paths
    (``*`` one key, ``**`` any depth) of an answer; arrays are filtered element-wise."""
    if not spec:
        return value
    patterns = [p.split(".") for p in spec.split(",") if p and not p.startswith("-")]
    out = _filter(value, patterns)
    return {} if out is _NOTHING else out


def _filter(value: Any, patterns: list[list[str]]) -> Any:
    if any(not p for p in patterns):
        return value  # a whole path matched: keep everything below
    if type(value) is list:
        if all(len(p) == 2 and p[0] == "*" and "*" not in p[1] for p in patterns):
            return _filter_items(value, [p[1] for p in patterns])
        kept = [_filter(v, patterns) for v in value]
        kept = [v for v in kept if v is not _NOTHING]
        return kept or _NOTHING
    if type(value) is not dict:
        return _NOTHING
    out = {}
    for key, sub in value.items():
        rest = []
        for p in patterns:
            head = p[0]
            if head == "**":
                rest.append(p)  # ** may match more keys below
                rest.append(p[1:])
            elif head == key or head == "*" or ("*" in head and _glob(head, key)):
                rest.append(p[1:])
        if rest:
            kept = _filter(sub, rest)
            if kept is not _NOTHING:
                out[key] = kept
    return out or _NOTHING


def _filter_items(value: list[Any], keys: list[str]) -> Any:
    """``*.<key>`` on each element of a list: the shape of a ``_bulk`` answer's
    items, filtered here in one pass (the generic walk costs 6 us an item)."""
    kept = []
    for element in value:
        if type(element) is not dict:
            continue
        out = {}
        for name, inner in element.items():
            if type(inner) is dict:
                picked = {k: inner[k] for k in keys if k in inner}
                if picked:
                    out[name] = picked
        if out:
            kept.append(out)
    return kept or _NOTHING


def _glob(pattern: str, name: str) -> bool:
    import fnmatch

    return fnmatch.fnmatchcase(name, pattern)


def _error(etype: str, reason: str) -> dict[str, Any]:
    return {"error": {"root_cause": [{"type": etype, "reason": reason}], "type": etype,
                      "reason": reason}, "status": 400}


def _item_error(index: str, doc_id: str | None, status: int, etype: str, reason: str
                ) -> dict[str, Any]:
    return {"_index": index, "_id": doc_id, "status": status,
            "error": {"type": etype, "reason": reason, "index": index}}


def _make_handler(server: EsTestServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            super().setup()
            # Elasticsearch sets TCP_NODELAY (http.tcp.no_delay); without it the
            # headers and the body's tail wait for the client's delayed ACK (40 ms).
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def log_message(self, *args: Any) -> None:
            pass

        def _reply(self, status: int, body: Any, headers: dict[str, str] | None = None,
                   filtered: bool = False) -> None:
            query = parse_qs(urlparse(self.path).query)
            if "filter_path" in query and not filtered:
                body = filter_path(body, ",".join(query["filter_path"]))
            data = orjson.dumps(body)
            self.send_response(status)
            self.send_header("X-Elastic-Product", "Elasticsearch")
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        def _body(self) -> bytes:
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def _handle(self) -> None:
            if server.refuse:
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            url = urlparse(self.path)
            parts = [p for p in url.path.split("/") if p]
            length = int(self.headers.get("Content-Length") or 0)
            if server.api_keys is not None and not _api_key_valid(
                    server.api_keys, self.headers.get("Authorization")):
                self.rfile.read(length)
                with server.lock:
                    server.unauthenticated += 1
                reason = ("unable to authenticate with provided credentials and anonymous access "
                          "is not allowed for this request")
                error = {"type": "security_exception", "reason": reason,
                         "header": {"WWW-Authenticate": ['Basic realm="security", charset="UTF-8"',
                                                         "ApiKey"]}}
                self._reply(401, {"error": {"root_cause": [error], **error}, "status": 401},
                            {"WWW-Authenticate": "ApiKey"})
                return
            if length > server.max_content_length:
                self.rfile.read(length)
                self._reply(413, {"error": "Request Entity Too Large"})
                return
            body = self._body()
            method = self.command
            if not parts:
                self._reply(200, {"name": "es-test-server", "cluster_name": "modelmon-test",
                                  "version": {"number": "9.0.0", "build_flavor": "default"},
                                  "tagline": "You Know, for Search"})
            elif parts[-1] == "_bulk" and method in ("POST", "PUT"):
                self._bulk(parts[0] if len(parts) == 2 else None, body)
            elif parts[0] == "_index_template" and len(parts) == 2:
                self._store(server.templates, parts[1], method, body, "index_template")
            elif parts[:2] == ["_ilm", "policy"] and len(parts) == 3:
                self._store(server.ilm_policies, parts[2], method, body, "policy")
            elif len(parts) == 2 and parts[1] == "_refresh":
                self._reply(200, {"_shards": {"total": 1, "successful": 1, "failed": 0}})
            elif len(parts) == 2 and parts[1] == "_count":
                self._reply(200, {"count": server.count(parts[0])})
            elif len(parts) == 2 and parts[1] == "_search":
                size = int(parse_qs(url.query).get("size", ["10"])[0])
                if body:
                    size = int(json.loads(body).get("size", size))
                docs = list(server.docs(parts[0]).items())[:size]
                hits = [{"_index": parts[0], "_id": k, "_source": v} for k, v in docs]
                self._reply(200, {"hits": {"total": {"value": server.count(parts[0]),
                                                     "relation": "eq"}, "hits": hits}})
            else:
                self._reply(404, _error("resource_not_found_exception", f"no handler for {url.path}"))

        def _bulk(self, index: str | None, body: bytes) -> None:
            ctype = self.headers.get("Content-Type", "")
            if "ndjson" not in ctype:
                self._reply(406, {"error": f"Content-Type header [{ctype}] is not supported",
                                  "status": 406})
                return
            if server.responses:
                status, headers, payload = server.responses.popleft()
                self._reply(status, payload, headers)
                return
            spec = ",".join(parse_qs(urlparse(self.path).query).get("filter_path", []))
            lean = set(spec.split(",")) == _LEAN_BULK_FILTER
            status, payload = server.bulk(index, body, lean)
            if server.close_after_commit > 0 and status == 200:
                server.close_after_commit -= 1
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)  # committed, never answered
                return
            self._reply(status, payload, filtered=lean and status == 200)

        def _store(self, table: dict[str, Any], name: str, method: str, body: bytes,
                   key: str) -> None:
            if method == "PUT":
                table[name] = json.loads(body) if body else {}
                self._reply(200, {"acknowledged": True})
            elif name in table:
                if key == "policy":
                    self._reply(200, {name: {"version": 1, "policy": table[name]["policy"]}})
                else:
                    self._reply(200, {"index_templates": [{"name": name, key: table[name]}]})
            else:
                self._reply(404, _error("resource_not_found_exception", f"{name} not found"))

        do_GET = do_POST = do_PUT = do_HEAD = do_DELETE = _handle

    return Handler


class JsonLinesServer:
    """A Logstash tcp input with the json_lines codec: one JSON event per line."""

    def __init__(self, port: int = 0) -> None:
        self.events: list[Any] = []
        self.bad_lines = 0
        self.lock = threading.Lock()
        outer = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                for line in self.rfile:
                    line = line.strip()
                    if not line:
                        continue
                    try:
                        event = json.loads(line)
                    except ValueError:
                        with outer.lock:
                            outer.bad_lines += 1
                        continue
                    with outer.lock:
                        outer.events.append(event)

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self._srv = Server(("127.0.0.1", port), Handler)
        self.port = self._srv.server_address[1]
        self._thread = threading.Thread(target=self._srv.serve_forever, daemon=True)

    def start(self) -> JsonLinesServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._srv.shutdown()
        self._srv.server_close()
