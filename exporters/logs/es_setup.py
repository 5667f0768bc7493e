"""``modelmon logs setup-es``: the index template and ILM policy for modelmon's events.

The template makes ``<index_pattern>`` a data stream with explicit mappings
for the ECS fields modelmon writes and its ``model.*`` namespace, so a stray
type in one event is a dead letter instead of a mapping explosion; the ILM
policy rolls the backing indices over and deletes them after ``delete_after``.
"""

from __future__ import annotations

from typing import Any

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


def mappings() -> dict[str, Any]:
    return {
        "dynamic_templates": [
            {"strings_as_keywords": {"match_mapping_type": "string", "mapping": _KW}},
        ],
        "properties": {
            "@timestamp": {"type": "date"},
            "message": {"type": "match_only_text"},
            "log": {"properties": {"level": _KW, "logger": _KW}},
            "service": {"properties": {"name": _KW, "environment": _KW}},
            "host": {"properties": {"hostname": _KW, "name": _KW}},
            "trace": {"properties": {"id": _KW}},
            "event": {"properties": {"id": _KW, "action": _KW, "kind": _KW, "category": _KW,
                                     "type": _KW, "outcome": _KW, "dataset": _KW,
                                     "duration": {"type": "long"}}},
            "error": {"properties": {"type": _KW, "message": {"type": "match_only_text"},
                                     "stack_trace": {"type": "wildcard"}}},
            "model": {"properties": {
                "name": _KW, "version": _KW, "framework": _KW, "outcome": _KW,
                "latency_seconds": {"type": "double"}, "batch_size": {"type": "long"},
                "score": {"type": "double"}, "prediction": _KW, "ground_truth": _KW,
                "correct": {"type": "boolean"},
                "input": {"type": "text", "index": False},
                "violations": {"type": "flattened"}, "violation_count": {"type": "long"},
                "drift": {"properties": {"feature": _KW, "statistic": _KW,
                                         "value": {"type": "double"},
                                         "threshold": {"type": "double"}}},
                "edge": {"properties": {"device": _KW, "reason": _KW,
                                        "outage_seconds": {"type": "double"},
                                        "backlog": {"type": "long"}}},
            }},
        },
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
