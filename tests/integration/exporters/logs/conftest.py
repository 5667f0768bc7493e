"""Fixtures for the log pipeline tests: an Elasticsearch (the test server, or a
real one when ES_URL is set), a Logstash json_lines server, shippers."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from modelmon.exporters.logs import LogShipper
from support.es_servers import EsTestServer, JsonLinesServer


class RealEs:
    """A real Elasticsearch from ES_URL (e.g. http://elastic:pw@127.0.0.1:9200)."""

    scriptable = False

    def __init__(self, url: str) -> None:
        from elasticsearch import Elasticsearch

        self.url = url
        self.client = Elasticsearch(url, verify_certs=os.environ.get("ES_VERIFY", "1") == "1")

    def docs(self, index: str) -> dict[str, Any]:
        self.client.indices.refresh(index=index)
        resp = self.client.search(index=index, size=10000, query={"match_all": {}})
        return {h["_id"]: h["_source"] for h in resp["hits"]["hits"]}


@pytest.fixture
def es() -> Iterator[Any]:
    url = os.environ.get("ES_URL")
    if url:
        yield RealEs(url)
        return
    server = EsTestServer().start()
    server.scriptable = True  # type: ignore[attr-defined]
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def scriptable_es(es: Any) -> Any:
    if not getattr(es, "scriptable", False):
        pytest.skip("fault injection needs the test server (ES_URL points at a real Elasticsearch)")
    return es


@pytest.fixture
def index_name() -> str:
    # A data stream under the built-in logs-*-* template; unique per test on a real cluster.
    return f"logs-modelmon-t{uuid.uuid4().hex[:8]}"


@pytest.fixture
def make_shipper(tmp_path: Path) -> Iterator[Callable[..., LogShipper]]:
    made: list[LogShipper] = []

    def make(**kw: Any) -> LogShipper:
        options: dict[str, Any] = {
            "spool_dir": tmp_path / "spool", "registry": CollectorRegistry(),
            "backoff_initial": 0.02, "backoff_max": 0.5, "service_name": "test-svc",
        }
        options.update(kw)
        shipper = LogShipper(**options)
        made.append(shipper)
        return shipper

    yield make
    for shipper in made:
        shipper.close(timeout=0.5)


@pytest.fixture
def logstash_tcp() -> Iterator[JsonLinesServer]:
    server = JsonLinesServer().start()
    try:
        yield server
    finally:
        server.stop()
