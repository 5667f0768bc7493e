"""Old import path, kept so users' code keeps working: this module now lives in
``modelmon.exporters.service.flask``."""

from modelmon.exporters.service.flask import UNMATCHED, instrument_app

__all__ = ["UNMATCHED", "instrument_app"]
