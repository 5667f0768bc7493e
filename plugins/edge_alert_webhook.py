"""Built-in plugin ``edge_alert_webhook``: each edge alert change to local webhooks.

The edge agent's local action for sites without a plugin of their own: when
an alert of the device's rules starts firing or resolves, it is POSTed to
every URL, online or offline (a siren controller, a line PLC gateway, a
local chat bridge on the device's network)::

    plugins:
      edge_alert_webhook:
        urls: [http://127.0.0.1:8080/alerts]
        timeout: 5s                  # per request; default 5s

The body is Alertmanager's webhook payload (version 4) holding the one alert,
so a receiver written for Alertmanager works on the device unchanged. A URL
that does not answer is logged and skipped; nothing is retried (Alertmanager
gets every alert durably anyway, ``edge.alerting``). Without ``urls`` the
plugin does nothing.
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any

from modelmon.hookspecs import hookimpl
from modelmon.units import parse_duration

log = logging.getLogger(__name__)

FIELD = "plugins.edge_alert_webhook"


def payload(alert: Mapping[str, Any]) -> dict[str, Any]:
    """Alertmanager's webhook body (version 4) for one alert."""
    labels = dict(alert.get("labels", {}))
    annotations = dict(alert.get("annotations", {}))
    return {
        "version": "4",
        "groupKey": json.dumps(labels, sort_keys=True),
        "truncatedAlerts": 0,
        "status": alert["status"],
        "receiver": "edge_alert_webhook",
        "groupLabels": {"alertname": labels.get("alertname", "")},
        "commonLabels": labels,
        "commonAnnotations": annotations,
        "externalURL": "",
        "alerts": [{
            "status": alert["status"], "labels": labels, "annotations": annotations,
            "startsAt": alert.get("startsAt", ""), "endsAt": alert.get("endsAt", ""),
            "generatorURL": alert.get("generatorURL", ""), "fingerprint": "",
        }],
    }


def _settings(config: Mapping[str, Any]) -> tuple[list[str], float]:
    urls = config.get("urls") or []
    if not isinstance(urls, list) or not all(
            isinstance(u, str) and u.startswith(("http://", "https://")) for u in urls):
        raise ValueError(f"{FIELD}.urls: expected a list of http(s) URLs, got {urls!r}")
    timeout = parse_duration(config.get("timeout", 5.0), f"{FIELD}.timeout")
    return urls, timeout


@hookimpl
def modelmon_on_edge_alert(alert: Mapping[str, Any], config: Mapping[str, Any]) -> None:
    urls, timeout = _settings(config)
    if not urls:
        return
    body = json.dumps(payload(alert)).encode()
    for url in urls:
        request = urllib.request.Request(url, data=body, method="POST",
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                response.read(1024)
        except (OSError, urllib.error.URLError) as exc:
            log.warning("%s: %s did not take alert %s (%s)", FIELD, url,
                        alert.get("labels", {}).get("alertname"), exc)
