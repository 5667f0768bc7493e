"""Built-in plugin: PII redaction of log events (e-mails, phones, card numbers,
optionally IP addresses) and field-level drop / hash, from ``logs.redact``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from modelmon.hookspecs import RegisterLogProcessor, hookimpl


@hookimpl
def modelmon_register_log_processors(
    register: RegisterLogProcessor, config: Mapping[str, Any]
) -> None:
    from modelmon.exporters.logs.redaction import Redactor

    section = config.get("redact") or {}
    if section.get("enabled", True) is False:
        return
    # Early (order 10): enrichment processors later in the chain see redacted text.
    register("redact", Redactor.from_config(section), order=10)
