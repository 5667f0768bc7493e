"""Who wins between a bundle and the device's own config: the device.

A device's config is written for that device (a slower evaluation on a
weak board, a site's extra rule), so what it sets explicitly overrides the
fleet's bundle: its ``evaluation_interval`` and ``query_window`` when set,
its rule groups, which replace a bundle group of the same name (the group
generated from the bundle's thresholds included), its ``collectors:`` list
when set, and each of its ``plugins.<name>`` settings.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from modelmon.exporters.edge.rules.files import RuleGroup

from .format import Bundle

if TYPE_CHECKING:
    from modelmon.exporters.edge.config import EdgeConfig


@dataclass(frozen=True)
class EffectiveRules:
    groups: tuple[RuleGroup, ...]
    evaluation_interval: float
    query_window: float | None
    overridden: tuple[str, ...]  # bundle groups replaced by the device's


def effective_rules(device_groups: Sequence[RuleGroup], bundle: Bundle | None, *,
                    interval: float, evaluation_interval: float | None,
                    query_window: float | None) -> EffectiveRules:
    """The rules the device runs: its own groups, then the bundle's it does not override."""
    config = bundle.config if bundle is not None else {}
    own = {g.name for g in device_groups}
    fleet = bundle.rule_groups if bundle is not None else ()
    return EffectiveRules(
        groups=(*device_groups, *(g for g in fleet if g.name not in own)),
        evaluation_interval=(evaluation_interval or config.get("evaluation_interval")
                             or interval),
        query_window=query_window or config.get("query_window"),
        overridden=tuple(g.name for g in fleet if g.name in own),
    )


def effective_collectors(config: EdgeConfig, bundle: Bundle | None
                         ) -> tuple[tuple[str, ...], dict[str, dict[str, Any]]]:
    """The collectors the device runs and every plugin's settings: the device's
    ``collectors:`` when its config sets the key, else the bundle's list; per
    plugin, the bundle's settings with the device's own on top."""
    fleet_names = bundle.collectors if bundle is not None else None
    names = config.collectors if "collectors" in config.own_keys or fleet_names is None \
        else fleet_names
    fleet = bundle.plugins if bundle is not None else {}
    settings = {name: {**fleet.get(name, {}), **config.plugins.get(name, {})}
                for name in sorted({*fleet, *config.plugins})}
    return names, settings
