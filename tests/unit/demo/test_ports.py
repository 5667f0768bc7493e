"""Every demo port is configurable and a taken one is named with the fix."""

from __future__ import annotations

import socket

import pytest

from modelmon import cli
from modelmon.demo.ports import EDGE_DEVICES, DemoPorts, PortTaken


def test_zero_picks_free_ports_that_do_not_overlap() -> None:
    ports = DemoPorts.resolve(app=0, exporter=0, prometheus=0, alertmanager=0, webhook=0,
                              bundles=0, edge_proxy=0, edge_listen=0)
    used = [ports.app, ports.exporter, ports.prometheus, ports.alertmanager, ports.webhook,
            ports.bundles,
            *(p for pair in ports.edge_proxies() for p in pair), *ports.edge_listens()]
    assert len(set(used)) == len(used) == 6 + 3 * EDGE_DEVICES


def test_a_taken_port_names_the_option_and_the_fix(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(PortTaken) as excinfo:
            DemoPorts.resolve(app=0, exporter=0, prometheus=0, alertmanager=port, webhook=0,
                              bundles=0, edge_proxy=0, edge_listen=0)
        assert f"port {port} for --alertmanager-port is taken" in str(excinfo.value)
        assert "--alertmanager-port 0 picks any free one" in str(excinfo.value)
        # the command says it and exits 2 before starting anything
        assert cli.main(["demo", "--prometheus-port", str(port), "--app-port", "0",
                         "--exporter-port", "0", "--alertmanager-port", "0",
                         "--webhook-port", "0", "--bundle-port", "0", "--edge-proxy-port", "0",
                         "--edge-listen-port", "0"]) == 2
    assert f"port {port} for --prometheus-port is taken" in capsys.readouterr().out


def test_overlapping_ranges_are_refused() -> None:
    with pytest.raises(PortTaken, match="overlaps"):
        DemoPorts(app=40000, edge_proxy=39999)._check_distinct()


def test_check_needs_a_scenario(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["demo", "--check"]) == 2
    assert "--check needs --scenario" in capsys.readouterr().out


def test_the_default_ports_do_not_overlap() -> None:
    DemoPorts()._check_distinct()


def test_zeros_never_reuse_a_port_already_chosen(monkeypatch: pytest.MonkeyPatch) -> None:
    # The kernel may hand out the same free port twice (nothing holds it between
    # picks): CI once got --edge-listen-port inside --edge-proxy-port's range.
    from modelmon.demo import processes

    real = processes.free_port
    first = real()
    handed = iter([first, first, first, first])
    monkeypatch.setattr(processes, "free_port", lambda: next(handed, None) or real())
    ports = DemoPorts.resolve(app=0, exporter=0, prometheus=0, alertmanager=0, webhook=0,
                              bundles=0, edge_proxy=0, edge_listen=0)
    ports._check_distinct()
    assert ports.app == first


def test_free_port_never_hands_out_the_same_port_twice(monkeypatch: pytest.MonkeyPatch) -> None:
    from modelmon.demo import processes

    offered = iter([41001, 41001, 41001, 41002])

    class OneAfterAnother:
        def __init__(self, *_: object) -> None:
            self.port = next(offered)

        def __enter__(self) -> OneAfterAnother:
            return self

        def __exit__(self, *_: object) -> None:
            return None

        def bind(self, _: object) -> None:
            return None

        def getsockname(self) -> tuple[str, int]:
            return ("127.0.0.1", self.port)

    monkeypatch.setattr(processes, "_HANDED_OUT", processes.collections.deque(maxlen=8))
    monkeypatch.setattr(processes.socket, "socket", OneAfterAnother)
    assert [processes.free_port(), processes.free_port()] == [41001, 41002]
