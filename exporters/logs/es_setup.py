"""``modelmon logs setup-es``: the index template and ILM policy for modelmon's events.

The template makes ``<index_pattern>`` a data stream with explicit mappings
for the ECS fields modelmon writes (with their ECS types, from ``ecs_schema``)
and its ``model.*`` namespace (``fields.MODEL_FIELD_TYPES``), so a stray type in
one event is a dead letter instead of a mapping explosion; the ILM
policy rolls the backing indices over and deletes them after ``delete_after``.
"""

from __future__ import annotations

from typing import Any

from modelmon.exporters.logs.ecs_schema import FIELD_TYPES
from modelmon.exporters.logs.fields import MODEL_FIELD_TYPES

_KW = {"type": "keyword", "ignore_above": 1024}


def ilm_policy(rollover_max_age: str = "1d", rollover_max_size: str = "50gb",
               delete_after: str = "30d") -> dict[str, Any]:
    return {
        "phases": {
            "hot": {"actions": {"rollover": {"max_age": rollover_max_age,
                                             "max_primary_shard_size": rollover_max_size}}},
            "delete": {"min_age": delete_after, "actions": {"delete": {}}},
        }
    }


# The ECS fields modelmon writes, mapped explicitly with their ECS types (so
# dynamic mapping never guesses one, e.g. keyword for ECS's wildcard url.path).
ECS_FIELDS = (
    "@timestamp", "message", "tags", "labels", "ecs.version",
    "log.level", "log.logger", "log.origin.file.name", "log.origin.file.line",
    "log.origin.function", "service.name", "service.environment", "host.hostname", "host.name",
    "process.pid", "process.thread.name", "trace.id", "http.request.id", "url.path",
    "event.id", "event.action", "event.kind", "event.category", "event.type", "event.outcome",
    "event.dataset", "event.duration", "event.reason",
    "error.type", "error.message", "error.stack_trace",
)
# Parameters of a type beyond its name (ECS's own: keywords ignore_above 1024).
_PARAMETERS: dict[str, dict[str, Any]] = {"keyword": {"ignore_above": 1024}}
_SPECIAL: dict[str, dict[str, Any]] = {"model.input": {"type": "text", "index": False}}


def mappings() -> dict[str, Any]:
    fields = {name: FIELD_TYPES[name] for name in ECS_FIELDS}
    fields.update(MODEL_FIELD_TYPES)
    root: dict[str, Any] = {"properties": {}}
    for name, kind in fields.items():
        node = root
        *parents, leaf = name.split(".")
        for part in parents:
            node = node["properties"].setdefault(part, {"properties": {}})
        spec = node["properties"].setdefault(leaf, {})
        if name == "labels":  # ECS: an object of keywords, by the dynamic template
            spec["type"] = "object"
        elif kind == "object":
            spec.setdefault("properties", {})
        else:
            spec.update(_SPECIAL.get(name) or {"type": kind, **_PARAMETERS.get(kind, {})})
    return {
        # ECS's labels and every custom string: keyword.
        "dynamic_templates": [
            {"strings_as_keywords": {"match_mapping_type": "string", "mapping": _KW}},
        ],
        "properties": root["properties"],
    }


def install(client: Any, *, template: str = "modelmon-logs", index_pattern: str =
            "logs-modelmon-*", policy: str = "modelmon-logs", **policy_options: str
            ) -> dict[str, Any]:
    """Install (or update) the ILM policy and the data-stream index template."""
    client.ilm.put_lifecycle(name=policy, policy=ilm_policy(**policy_options))
    client.indices.put_index_template(
        name=template,
        index_patterns=[index_pattern],
        data_stream={},
        # Above Elasticsearch's built-in logs-*-* template (priority 100).
        priority=200,
        template={"settings": {"index.lifecycle.name": policy}, "mappings": mappings()},
        meta={"managed_by": "modelmon"},
    )
    return {"template": template, "index_pattern": index_pattern, "policy": policy}
