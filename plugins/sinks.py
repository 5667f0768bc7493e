"""Built-in plugin: the log sinks (Elasticsearch, Logstash tcp/http, JSON-lines file,
Graylog GELF, S3-compatible object storage archive, CloudWatch Logs)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from modelmon.hookspecs import RegisterSink, hookimpl


def _elasticsearch(options: Mapping[str, Any]) -> Any:
    from modelmon.exporters.logs.elasticsearch_sink import ElasticsearchSink

    return ElasticsearchSink(**options)


def _logstash_tcp(options: Mapping[str, Any]) -> Any:
    from modelmon.exporters.logs.logstash import LogstashTcpSink

    return LogstashTcpSink(**options)


def _logstash_http(options: Mapping[str, Any]) -> Any:
    from modelmon.exporters.logs.logstash import LogstashHttpSink

    return LogstashHttpSink(**options)


def _file(options: Mapping[str, Any]) -> Any:
    from modelmon.exporters.logs.file_sink import FileSink

    return FileSink(**options)


def _gelf(options: Mapping[str, Any]) -> Any:
    from modelmon.exporters.logs.gelf import GelfSink

    return GelfSink(**options)


def _s3(options: Mapping[str, Any]) -> Any:
    from modelmon.exporters.logs.s3_sink import S3ArchiveSink

    return S3ArchiveSink(**options)


def _cloudwatch(options: Mapping[str, Any]) -> Any:
    from modelmon.exporters.logs.cloudwatch_sink import CloudWatchLogsSink

    return CloudWatchLogsSink(**options)


@hookimpl
def modelmon_register_sinks(register: RegisterSink) -> None:
    register("elasticsearch", _elasticsearch)
    register("logstash_tcp", _logstash_tcp)
    register("logstash_http", _logstash_http)
    register("file", _file)
    register("gelf", _gelf)
    register("s3", _s3)
    register("cloudwatch", _cloudwatch)
