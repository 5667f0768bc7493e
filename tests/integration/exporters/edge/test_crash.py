"""SIGKILL the agent at random moments during an outage and during backfill.

A few iterations here; ``tests/chaos/edge_sigkill.py`` runs the same loop
>= 100 times (``EDGE_CHAOS_ITERATIONS`` scales this test too).
"""

from __future__ import annotations

import os
import random

import pytest

from support.edge_harness import Agent, Receiver, sigkill_rounds

pytestmark = pytest.mark.integration


def test_sigkill_during_outage_and_backfill_loses_nothing(receiver: Receiver, agent: Agent) -> None:
    iterations = int(os.environ.get("EDGE_CHAOS_ITERATIONS", "2"))
    report = sigkill_rounds(receiver, agent, iterations, random.Random(iterations))
    assert report["missing"] == 0, report
    assert report["corrupt"] == 0, report
    assert report["kills"] == 2 * iterations
