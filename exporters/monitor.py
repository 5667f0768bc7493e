"""Old import path, kept so users' code keeps working: this module now lives in
``modelmon.exporters.service.monitor``."""

from modelmon.exporters.service.monitor import InferenceRejected, ModelMonitor, Track

__all__ = ["InferenceRejected", "ModelMonitor", "Track"]
