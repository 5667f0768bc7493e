"""The demo's configuration bundles: a fleet key, a bundle server, rollouts.

The devices pull ``<group>.tar.gz`` from a bundle server the demo runs (the
app of ``modelmon edge bundle serve``); edge-1 and edge-2 are group ``fleet``,
edge-3 its own group. A rollout publishes a new bundle to both groups, but
edge-3's is signed with a key the devices do not trust: edge-1 and edge-2
apply it without a restart, edge-3 refuses it and keeps its last good one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from modelmon.exporters.edge.bundles.format import build_bundle
from modelmon.exporters.edge.bundles.server import bundle_app
from modelmon.exporters.edge.bundles.signing import generate_keypair, load_private_key
from modelmon.exporters.edge.bundles.store import write_atomic
from modelmon.exporters.edge.http_server import serve

REFUSING_DEVICE = "edge-3"
POLL_INTERVAL = "3s"

_FLEET_RULES = {"groups": [{
    "name": "demo.edge.fleet",
    "rules": [{
        "record": "device:modelmon_inference_requests:rate20s",
        "expr": "sum by (model) (rate(modelmon_inference_requests_total[20s]))",
    }],
}]}


class DemoBundles:
    def __init__(self, workdir: Path, port: int) -> None:
        self.dir = workdir
        self.published = workdir / "published"
        self.published.mkdir(parents=True, exist_ok=True)
        self.public_key = workdir / "fleet.pub"
        generate_keypair(workdir / "fleet.key", self.public_key)
        # A key no device trusts: what a wrong build pipeline signs with.
        generate_keypair(workdir / "rogue.key", workdir / "rogue.pub")
        self.version = "demo-1"
        for group in ("fleet", REFUSING_DEVICE):
            self._publish(group, self.version, "fleet.key")
        self._httpd: Any = serve("127.0.0.1", port, bundle_app(self.published))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_port}"

    def device_section(self, device: str) -> dict[str, Any]:
        group = REFUSING_DEVICE if device == REFUSING_DEVICE else "fleet"
        return {"url": f"{self.url}/{group}.tar.gz", "public_key": str(self.public_key),
                "poll_interval": POLL_INTERVAL, "timeout": "3s"}

    def rollout(self, version: str) -> None:
        """A new bundle for the fleet; the refusing device's is signed with the wrong key."""
        self.version = version
        self._publish("fleet", version, "fleet.key")
        self._publish(REFUSING_DEVICE, version, "rogue.key")

    def _publish(self, group: str, version: str, key_file: str) -> None:
        source = self.dir / "src" / group
        (source / "rules").mkdir(parents=True, exist_ok=True)
        (source / "rules" / "fleet.yml").write_text(yaml.safe_dump(_FLEET_RULES, sort_keys=False))
        (source / "bundle.yml").write_text(yaml.safe_dump({
            "version": version, "rules": ["rules/*.yml"],
        }))
        data = build_bundle(source, key=load_private_key(self.dir / key_file))
        write_atomic(self.published / f"{group}.tar.gz", data)

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
