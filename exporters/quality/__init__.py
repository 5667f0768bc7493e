"""Model quality: input data quality, streaming drift against a reference
profile, prediction distributions and late ground truth (docs/quality.md)."""

from __future__ import annotations

from modelmon.exporters.quality.ingest_events import (
    InvalidQualityEvent,
    handle_event,
    ingest_parsers,
)
from modelmon.exporters.quality.profile import FeatureProfile, Profile, ProfileError
from modelmon.exporters.quality.tracker import QualityTracker

__all__ = [
    "FeatureProfile",
    "InvalidQualityEvent",
    "Profile",
    "ProfileError",
    "QualityTracker",
    "handle_event",
    "ingest_parsers",
]
