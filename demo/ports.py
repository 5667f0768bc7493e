"""The demo's ports: every one configurable, each checked before anything starts."""

from __future__ import annotations

import errno
import socket
from dataclasses import dataclass, field, fields

# (field, command-line option, default). 0 picks any free port.
PORT_OPTIONS = (
    ("app", "--app-port", 8000),
    ("exporter", "--exporter-port", 9110),
    ("prometheus", "--prometheus-port", 9090),
    ("alertmanager", "--alertmanager-port", 9093),
    ("webhook", "--webhook-port", 9095),
    ("bundles", "--bundle-port", 9120),  # the configuration bundle server
    # The first of six: each device's link is two proxies, remote_write and alerts.
    ("edge_proxy", "--edge-proxy-port", 9201),
    ("edge_listen", "--edge-listen-port", 9111),  # the first of three device /metrics
)
EDGE_DEVICES = 3


def _span(name: str) -> int:
    """How many consecutive ports a port option uses."""
    return {"edge_proxy": 2 * EDGE_DEVICES, "edge_listen": EDGE_DEVICES}.get(name, 1)


class PortTaken(Exception):
    """A configured port is in use; the message names the option and the fix."""


@dataclass
class DemoPorts:
    app: int = 8000
    exporter: int = 9110
    prometheus: int = 9090
    alertmanager: int = 9093
    webhook: int = 9095
    bundles: int = 9120
    edge_proxy: int = 9201
    edge_listen: int = 9111
    # Options given as 0: a port bound late (Prometheus starts once the models
    # answer) may be taken meanwhile, and is then chosen again.
    auto: frozenset[str] = field(default=frozenset(), compare=False)

    def edge_proxies(self) -> list[tuple[int, int]]:
        """(remote_write proxy, Alertmanager proxy) per device."""
        return [(self.edge_proxy + 2 * i, self.edge_proxy + 2 * i + 1)
                for i in range(EDGE_DEVICES)]

    def edge_listens(self) -> list[int]:
        return [self.edge_listen + i for i in range(EDGE_DEVICES)]

    @classmethod
    def resolve(cls, **wanted: int) -> DemoPorts:
        """Free ports for the zeros; raises PortTaken for a given port in use."""
        values: dict[str, int] = {}
        auto = set()
        for name, option, _ in PORT_OPTIONS:
            port = wanted.get(name, getattr(cls, name))
            if port == 0:
                auto.add(name)
                continue
            span = _span(name)
            for offset in range(span):
                _check_free(port + offset, option, span)
            values[name] = port
        # Zeros after the given ports, avoiding every port already chosen: nothing
        # holds a free port between two picks, so the kernel may hand one out twice.
        claimed = {port + offset for name, port in values.items()
                   for offset in range(_span(name))}
        for name, _, _ in PORT_OPTIONS:
            if name in auto:
                values[name] = _free_span(_span(name), claimed)
                claimed.update(values[name] + offset for offset in range(_span(name)))
        ports = cls(**values, auto=frozenset(auto))
        ports._check_distinct()
        return ports

    def _check_distinct(self) -> None:
        seen: dict[int, str] = {}
        for f in fields(self):
            if f.name == "auto":
                continue
            span = _span(f.name)
            option = next(o for n, o, _ in PORT_OPTIONS if n == f.name)
            for offset in range(span):
                port = getattr(self, f.name) + offset
                if port in seen:
                    raise PortTaken(f"{option} {getattr(self, f.name)} overlaps {seen[port]} "
                                    f"(port {port}); choose ports that do not overlap")
                seen[port] = option


def _check_free(port: int, option: str, span: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError as exc:
            what = "is taken by another program" if exc.errno == errno.EADDRINUSE else str(exc)
            uses = f" (it uses {span} ports from the one given)" if span > 1 else ""
            raise PortTaken(
                f"port {port} for {option}{uses} {what}: stop that program, or pass "
                f"{option} with another port ({option} 0 picks any free one)"
            ) from None


def _free_span(span: int, claimed: set[int] | frozenset[int] = frozenset()) -> int:
    """A free port followed by span - 1 free ports, none of them in claimed."""
    from modelmon.demo.processes import free_port  # loads requests: not at command-line build

    for _ in range(50):
        start = free_port()
        if claimed.intersection(range(start, start + span)):
            continue
        try:
            for offset in range(span):
                _check_free(start + offset, "", span)
            return start
        except PortTaken:
            continue
    raise PortTaken(f"no {span} consecutive free loopback ports found")
