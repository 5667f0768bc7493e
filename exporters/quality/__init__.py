"""Model quality: input data quality, streaming drift against a reference
profile, prediction distributions and late ground truth (docs/quality.md)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from modelmon.lazy import lazy_exports

# Resolved on first access: the package is imported whenever `modelmon`'s
# command line loads this product's commands, and those must stay light
# (numpy, the spool, Flask load only when a command or user needs them).
_EXPORTS = {
    "InvalidQualityEvent": "modelmon.exporters.quality.ingest_events",
    "handle_event": "modelmon.exporters.quality.ingest_events",
    "ingest_parsers": "modelmon.exporters.quality.ingest_events",
    "FeatureProfile": "modelmon.exporters.quality.profile",
    "Profile": "modelmon.exporters.quality.profile",
    "ProfileError": "modelmon.exporters.quality.profile",
    "QualityTracker": "modelmon.exporters.quality.tracker",
}

if TYPE_CHECKING:
    from modelmon.exporters.quality.ingest_events import (
        InvalidQualityEvent,
        handle_event,
        ingest_parsers,
    )
    from modelmon.exporters.quality.profile import FeatureProfile, Profile, ProfileError
    from modelmon.exporters.quality.tracker import QualityTracker


__getattr__ = lazy_exports(__name__, _EXPORTS)


__all__ = ["FeatureProfile", "InvalidQualityEvent", "Profile", "ProfileError", "QualityTracker", "handle_event", "ingest_parsers"]
