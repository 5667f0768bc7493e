"""Log shipping: the AI pipeline's critical points as ECS JSON, through a durable
spool, to Elasticsearch, Logstash or a JSON-lines file. See docs/logging.md."""

from __future__ import annotations

from modelmon.exporters.logs.correlation import flask_hooks
from modelmon.exporters.logs.handler import ShipperHandler
from modelmon.exporters.logs.points import ModelLog
from modelmon.exporters.logs.redaction import Redactor
from modelmon.exporters.logs.shipper import LogShipper

__all__ = ["LogShipper", "ModelLog", "Redactor", "ShipperHandler", "flask_hooks"]
