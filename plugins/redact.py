"""Built-in plugin: PII redaction of log events (e-mails, phones, card numbers,
optionally IP addresses) and field-level drop / hash, from ``logs.redact``.

Redaction is on unless the configuration says ``redact: {enabled: false}``;
switching it off logs a warning each time a shipper starts, so that shipping
PII unredacted is never silent."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from modelmon.hookspecs import RegisterLogProcessor, hookimpl

log = logging.getLogger(__name__)


@hookimpl
def modelmon_register_log_processors(
    register: RegisterLogProcessor, config: Mapping[str, Any]
) -> None:
    from modelmon.exporters.logs.config import redact_settings
    from modelmon.exporters.logs.redaction import Redactor

    enabled, section = redact_settings(config)
    if not enabled:
        log.warning(
            "logs.redact.enabled is false: PII in log events (e-mail addresses, phone and "
            "card numbers) will be shipped unredacted; remove 'enabled: false' from "
            "logs.redact to redact it"
        )
        return
    # Early (order 10): enrichment processors later in the chain see redacted text.
    register("redact", Redactor.from_config(section), order=10)
