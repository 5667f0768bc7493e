"""The two ways an expression fails: refused at load, or failing at evaluation."""

from __future__ import annotations


class PromQLError(Exception):
    """An evaluation error Prometheus raises too (e.g. many-to-many matching);
    the message is Prometheus's."""


class UnsupportedExpression(ValueError):
    """The expression does not parse or uses PromQL the edge evaluator refuses."""
