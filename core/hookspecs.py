"""The hooks a modelmon plugin can implement.

A plugin is a module or object with functions marked ``@hookimpl`` and named
like the specs below. Install it with an entry point in the ``modelmon``
group::

    [project.entry-points.modelmon]
    my_gpu = "my_package.modelmon_plugin"

Every ``modelmon_register_*`` hook receives a ``register`` callback instead of
returning lists (the ``llm`` pattern): a plugin calls it once per thing it
provides. Those hooks run when modelmon starts; what a plugin registers is
then called on the hot path or on a scrape, isolated so that a failing plugin
never breaks a scrape, a log call or the edge agent. ``modelmon_on_edge_alert``
is an event: the edge agent calls it on its own thread when an alert changes
state.

``docs/plugins.md`` documents each hook and each argument; a test fails when
one is missing there.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias

import pluggy

if TYPE_CHECKING:
    # Not at run time: ``import modelmon`` must not import prometheus_client,
    # which picks its value class (in-memory or multiprocess files) once, at
    # import, before gunicorn_config can set PROMETHEUS_MULTIPROC_DIR.
    from prometheus_client import Metric

PROJECT = "modelmon"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


class Collector(Protocol):
    """prometheus_client's collector protocol: ``collect()`` yields metric families.

    A collector holding resources (a client, threads) may also have ``close()``
    (or ``shutdown()``): it is called once, when the set it belongs to is dropped
    (an edge bundle's new collector settings, the agent stopping), after any
    ``collect()`` under way returned.
    """

    def collect(self) -> Iterable[Metric]: ...


class CollectorUnavailable(Exception):
    """Raised by ``collect()`` when what a collector reads is absent or out of
    reach (no GPU, a Docker daemon that does not answer).

    Like any failure, the collector's metrics are left out and
    ``modelmon_collector_success`` says 0; unlike other failures, it is logged
    once, as a warning with the message and no traceback, and again only when
    the message changes: an absent device is a state, not an error to repeat
    on every scrape. The message names the setting to fix.
    """


LogEvent = dict[str, Any]
LogProcessor = Callable[[LogEvent], "LogEvent | None"]
SinkFactory = Callable[[Mapping[str, Any]], Any]

RegisterCollector = Callable[[str, Collector], None]
RegisterLogProcessor = Callable[..., None]
RegisterSink = Callable[[str, SinkFactory], None]
# A spool key provider (a KMS client): its ``kms:`` settings -> the keys, current first.
SpoolKeyProvider = Callable[[Mapping[str, Any]], "list[bytes]"]
RegisterSpoolKeyProvider = Callable[[str, SpoolKeyProvider], None]
# A remote_write authentication scheme (modelmon.exporters.edge.auth.RequestAuth)
# from its ``auth:`` settings; RequestAuth lives with the edge agent, so: Any.
RemoteWriteAuthFactory = Callable[[Mapping[str, Any]], Any]
RegisterRemoteWriteAuth = Callable[[str, RemoteWriteAuthFactory], None]
# argparse's sub-parser collection (``ArgumentParser.add_subparsers()``).
SubParsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


@hookspec
def modelmon_register_collectors(register: RegisterCollector, config: Mapping[str, Any]) -> None:
    """Register Prometheus collectors for device- or cloud-specific metrics.

    Call ``register(name, collector)`` once per collector. ``collector`` has a
    ``collect()`` method yielding ``prometheus_client`` metric families, like
    any custom collector. Each collector is called on every scrape (and every
    edge agent interval) inside its own error boundary: an exception is logged
    and shows as ``modelmon_collector_success{collector="<name>"} 0``, while the
    rest of the scrape goes on. ``modelmon_collector_duration_seconds`` reports
    how long it took.

    :param register: ``register(name: str, collector: Collector) -> None``;
        ``name`` becomes the ``collector`` label and must be unique.
    :param config: this plugin's section of the modelmon config file (the
        mapping under ``plugins.<entry point name>``), plus ``prefix``, the
        metric name prefix in use (``modelmon_`` by default).
    :return: nothing; results are given through ``register``.
    """


@hookspec
def modelmon_register_log_processors(
    register: RegisterLogProcessor, config: Mapping[str, Any]
) -> None:
    """Register processors that see every log event before it is spooled.

    Call ``register(name, processor, order=100)``. ``processor(event)`` gets
    the event as a dict (Elastic Common Schema fields) and returns the event
    to keep (changed or not) or ``None`` to drop it. Processors run in
    ascending ``order`` on the calling thread, so they must be fast and must
    not do I/O; redaction of PII is the typical use. A processor that raises
    is skipped for that event and the failure is counted.

    :param register: ``register(name: str, processor: LogProcessor, order: int = 100) -> None``.
    :param config: the ``logs:`` section of the modelmon config file (or the
        ``processor_config`` given to ``LogShipper``); e.g. the built-in ``redact``
        plugin reads ``config["redact"]``. An implementation may omit it.
    :return: nothing; results are given through ``register``.
    """


@hookspec
def modelmon_register_sinks(register: RegisterSink) -> None:
    """Register destinations that spooled log events can be shipped to.

    Call ``register(name, factory)``; ``LogShipper(sink=name, ...)`` then
    calls ``factory(options)`` with the remaining options and uses what it
    returns as the sink. Sinks run on the shipper's background worker, never
    on the caller's thread. A sink is an object with ``name``,
    ``send(items) -> SendResult`` (classify every item: delivered, retry,
    dead-letter) and ``close()`` (``modelmon.exporters.logs.sinks.Sink``). One
    ``send`` runs at a time unless the sink sets ``max_in_flight`` (the
    Elasticsearch sink: 2); then that many overlap, from as many threads.

    :param register: ``register(name: str, factory: SinkFactory) -> None``;
        ``name`` is what users put in ``sink:``.
    :return: nothing; results are given through ``register``.
    """


@hookspec
def modelmon_register_spool_key_providers(register: RegisterSpoolKeyProvider) -> None:
    """Register key providers (a KMS, a TPM, a secrets manager) for spool encryption.

    Call ``register(name, provider)``. A spool configured with
    ``encryption: {kms: {provider: <name>, ...}}`` (``edge.spool.encryption``,
    ``logs.spool.encryption``) calls ``provider(settings)`` once, when it
    opens, with the ``kms`` mapping minus ``provider``; it returns the keys as
    bytes (16, 24 or 32 each, AES-128/192/256), the one that seals new records
    first, then the older ones that must still open records written under
    them (key rotation). Each record names its key by id (the first 4 bytes of
    the key's SHA-256), so the order of the older keys does not matter. A
    provider that raises stops the agent or the shipper at start with a
    message naming ``<section>.encryption.kms``: a spool never starts without
    its keys. Keep the keys in memory only; never log them.

    :param register: ``register(name: str, provider: SpoolKeyProvider) -> None``;
        ``name`` is what users put in ``kms.provider``.
    :return: nothing; results are given through ``register``.
    """


@hookspec
def modelmon_register_remote_write_auth(register: RegisterRemoteWriteAuth) -> None:
    """Register authentication schemes for the edge agent's remote_write (Azure
    AD managed identity, Google credentials...), beside the built-in
    basic_auth, authorization, oauth2 and sigv4.

    Call ``register(name, factory)``. An agent configured with
    ``remote_write: {auth: {provider: <name>, ...}}`` calls ``factory(settings)``
    once, at start, with the ``auth`` mapping minus ``provider``; it returns a
    ``modelmon.exporters.edge.auth.RequestAuth``: ``field_name`` (the config
    field a user fixes), ``authorize(request)`` (add headers to the
    ``AuthRequest``; raise ``CredentialsUnavailable`` to retry later or
    ``CredentialsRefused`` to hold the samples), ``fingerprint()`` (bytes that
    change when the credentials do) and ``renew()`` (after a 401/403: True if
    the next ``authorize`` uses fresh credentials, such as a new token). After
    a 401/403 that ``renew`` cannot cure, the agent sends nothing until
    ``fingerprint()`` changes; the samples wait in the spool. A factory that
    raises ValueError stops the agent at start naming ``remote_write.auth``.

    :param register: ``register(name: str, factory: RemoteWriteAuthFactory) -> None``;
        ``name`` is what users put in ``auth.provider``.
    :return: nothing; results are given through ``register``.
    """


@hookspec
def modelmon_register_commands(subparsers: SubParsers) -> None:
    """Add subcommands to the ``modelmon`` command line.

    Call ``subparsers.add_parser(name, help=...)`` and set
    ``set_defaults(func=handler)``; ``handler(args) -> int`` returns the exit
    status. A group command (``modelmon edge run``) sets ``_parser`` to its own
    parser so that it prints its help when called without a subcommand. Import
    heavy modules inside the handler, not at module level: ``modelmon --help``
    loads every command. The products (``serve``, ``profile``, ``logs``,
    ``edge``, ``dashboards``, ``demo``) add theirs through this hook, as
    built-in plugins, so core never imports them.

    :param subparsers: the ``modelmon`` parser's sub-parser collection.
    :return: nothing; commands are added to ``subparsers``.
    """


@hookspec
def modelmon_on_edge_alert(alert: Mapping[str, Any], config: Mapping[str, Any]) -> None:
    """Act on the device when one of its edge alerts starts firing or resolves.

    The edge agent evaluates its rule files on the device, online or offline;
    each time an alert changes state it calls this hook, so a site can act
    without the cloud: run a command, call a local webhook, stop a line. The
    calls run on a thread of the agent's own, one change at a time, each
    implementation in its own error boundary (an exception is logged and the
    other implementations still run); a slow action delays only the actions
    after it, never evaluation or delivery to Alertmanager. Changes queued
    beyond 1000 are dropped and counted. Pending alerts and resends are not
    reported; Alertmanager gets every alert anyway (``edge.alerting``).

    :param alert: the alert as Alertmanager's API v2 sees it: ``labels`` (with
        ``alertname`` and the device labels), ``annotations``, ``startsAt``
        (when it started firing on the device), ``endsAt`` (when it resolved;
        for a firing alert, until when this notice holds), ``generatorURL``,
        plus ``status``: ``"firing"`` or ``"resolved"``. Times are RFC 3339
        strings in UTC. Treat it as read-only.
    :param config: this plugin's section of the config file (the mapping
        under ``plugins.<entry point name>``); an implementation may omit it.
    :return: nothing.
    """
