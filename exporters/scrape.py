"""Old import path, kept so users' code keeps working: this module now lives in
``modelmon.exporters.service.scrape``."""

from modelmon.exporters.service.scrape import (
    MULTIPROC_ENV,
    multiprocess_dir,
    render,
    scrape_registry_factory,
)

__all__ = ["MULTIPROC_ENV", "multiprocess_dir", "render", "scrape_registry_factory"]
