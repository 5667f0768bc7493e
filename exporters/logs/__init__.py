"""Log shipping: the AI pipeline's critical points as ECS JSON, through a durable
spool, to Elasticsearch, Logstash or a JSON-lines file. See docs/logging.md."""

from __future__ import annotations

from typing import TYPE_CHECKING

from modelmon.lazy import lazy_exports

# Resolved on first access: the package is imported whenever `modelmon`'s
# command line loads this product's commands, and those must stay light
# (numpy, the spool, Flask load only when a command or user needs them).
_EXPORTS = {
    "flask_hooks": "modelmon.exporters.logs.correlation",
    "ShipperHandler": "modelmon.exporters.logs.handler",
    "ModelLog": "modelmon.exporters.logs.points",
    "Redactor": "modelmon.exporters.logs.redaction",
    "LogShipper": "modelmon.exporters.logs.shipper",
}

if TYPE_CHECKING:
    from modelmon.exporters.logs.correlation import flask_hooks
    from modelmon.exporters.logs.handler import ShipperHandler
    from modelmon.exporters.logs.points import ModelLog
    from modelmon.exporters.logs.redaction import Redactor
    from modelmon.exporters.logs.shipper import LogShipper


__getattr__ = lazy_exports(__name__, _EXPORTS)


__all__ = ["LogShipper", "ModelLog", "Redactor", "ShipperHandler", "flask_hooks"]
