"""An example modelmon plugin, as a site would write one for its devices.

It registers a collector that reads an accelerator's temperature from a file
(``temperature_file`` in its config section; sysfs on a real device) and a log
processor that tags every event with the site name. When the file is missing
the collector raises: modelmon then reports
``modelmon_collector_success{collector="example_accelerator"} 0`` and the rest
of the scrape is unaffected.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from prometheus_client.metrics_core import GaugeMetricFamily, Metric

from modelmon import hookimpl


class AcceleratorTemperature:
    def __init__(self, path: Path) -> None:
        self.path = path

    def collect(self) -> Iterator[Metric]:
        celsius = float(self.path.read_text().strip()) / 1000.0  # sysfs millidegrees
        family = GaugeMetricFamily(
            "example_accelerator_temperature_celsius", "Accelerator temperature.", labels=["chip"]
        )
        family.add_metric(["0"], celsius)
        yield family


@hookimpl
def modelmon_register_collectors(register: Any, config: Mapping[str, Any]) -> None:
    path = Path(config.get("temperature_file", "/sys/class/thermal/thermal_zone0/temp"))
    register("example_accelerator", AcceleratorTemperature(path))


@hookimpl
def modelmon_register_log_processors(register: Any) -> None:
    def tag_site(event: dict[str, Any]) -> dict[str, Any]:
        event.setdefault("labels", {})["site"] = "example-site"
        return event

    register("example_site_tag", tag_site, order=500)
