"""The docker collector against a real dockerd (tests/support/dockerd.py):
labelled containers that burn CPU and memory, get OOM-killed, restart, exit
and pass their health check show it; unlabelled ones stay out; the cap is
counted; a dead socket is success 0, never a failed scrape; ``modelmon serve``
and the edge agent both run it."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from modelmon.collectors import PluginCollectors
from modelmon.config import serve_config_from_mapping
from modelmon.exporters.edge import EdgeAgent, edge_config_from_mapping
from modelmon.exporters.service.app import create_app
from modelmon.plugins.docker import DockerCollector, from_config
from modelmon.plugins.nvml import container_id
from support.dockerd import Dockerd, import_busybox_image, running_dockerd

pytestmark = pytest.mark.integration

MiB = 1024 * 1024


@pytest.fixture(scope="module")
def dockerd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dockerd]:
    with running_dockerd(tmp_path_factory.mktemp("dockerd")) as daemon:
        if isinstance(daemon, str):
            pytest.skip(f"dockerd cannot start here: {daemon}")
        import_busybox_image(daemon)
        yield daemon
        # Killed now, not stopped by dockerd's shutdown (10 s per `sleep` as PID 1).
        ids = daemon.docker("ps", "-aq").split()
        if ids:
            daemon.docker("rm", "-f", *ids)


def run(daemon: Dockerd, name: str, script: str, *options: str, model: str | None = "churn",
        detach: bool = True, network: str = "none") -> None:
    labels = ["--label", f"modelmon.model={model}", "--label", "modelmon.version=3"] if model else []
    daemon.docker("run", *(["-d"] if detach else []), "--name", name, "--network", network,
                  *labels, *options, "modelmon-test-busybox:1", "sh", "-c", script,
                  check=detach)


def scrape(collector: object) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(collector)  # type: ignore[arg-type]
    generate_latest(registry)  # what Prometheus would read: must encode
    return registry


def wait_for(check: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(0.25)


def value(registry: CollectorRegistry, name: str, container: str, **labels: str) -> float | None:
    return registry.get_sample_value(
        f"modelmon_{name}", {"model": "churn", "version": "3", "container": container, **labels})


def test_labelled_containers_show_cpu_memory_oom_kills_restarts_state_and_health(dockerd):
    collector = from_config({"url": dockerd.url})
    assert isinstance(collector, DockerCollector)
    # Burns a core for a few seconds and holds ~30 MiB in a tmpfs (charged to its memory).
    run(dockerd, "burner",
        "timeout 4 yes > /dev/null & head -c 31457280 /dev/zero > /data/blob; sleep 600",
        "--memory", "128m", "--tmpfs", "/data:size=64m")
    # tail -c keeps 90 MB in memory: over its 16 MiB limit, the kernel kills it.
    run(dockerd, "oom-victim", "head -c 100000000 /dev/zero | tail -c 90000000 > /dev/null",
        "--memory", "16m", "--memory-swap", "16m", detach=False)
    run(dockerd, "one-shot", "exit 3", detach=False)
    run(dockerd, "crasher", "exit 1", "--restart", "on-failure:2")
    run(dockerd, "checked", "sleep 600", "--health-cmd", "true", "--health-interval", "1s")
    run(dockerd, "not-a-model", "sleep 600", model=None)

    def settled() -> bool:
        registry = scrape(collector)
        return ((value(registry, "container_cpu_seconds_total", "burner") or 0) > 0.3
                and (value(registry, "container_memory_working_set_bytes", "burner") or 0) > 28 * MiB
                and (value(registry, "container_restarts_total", "crasher") or 0) >= 1
                and value(registry, "container_health_status", "checked", status="healthy") == 1)

    wait_for(settled, "CPU, memory, restarts and health to show")
    r = scrape(collector)
    assert value(r, "container_memory_limit_bytes", "burner") == 128 * MiB
    assert value(r, "container_state", "burner", state="running") == 1
    assert value(r, "container_state", "burner", state="exited") == 0
    assert value(r, "container_block_io_bytes_total", "burner", direction="read") is not None
    assert value(r, "container_network_bytes_total", "burner", direction="receive") is None, (
        "--network none has no interfaces to count")

    assert value(r, "container_state", "oom-victim", state="exited") == 1
    assert (value(r, "container_oom_kills_total", "oom-victim") or 0) >= 1
    assert value(r, "container_oom_kills_total", "burner") == 0, "every container has its counter"
    assert value(r, "container_memory_limit_bytes", "oom-victim") == 16 * MiB
    assert value(r, "container_cpu_seconds_total", "oom-victim") is None, "no stats once exited"

    assert value(r, "container_state", "one-shot", state="exited") == 1
    assert value(r, "container_state", "one-shot", state="running") == 0
    assert value(r, "container_health_status", "one-shot", status="healthy") is None, (
        "no health check, no health series")
    assert value(r, "container_memory_limit_bytes", "one-shot") is None, "no limit, no series"

    names = {s.labels.get("container") for f in r.collect() for s in f.samples}
    assert "not-a-model" not in names, "containers without modelmon.model are not reported"
    assert r.get_sample_value("modelmon_containers_unreported") == 0

    # The OOM count holds across collections: each reads only the events since the last.
    again = scrape(collector)
    assert value(again, "container_oom_kills_total", "oom-victim") == value(
        r, "container_oom_kills_total", "oom-victim")


def test_network_bytes_of_a_container_on_its_own_network(dockerd):
    dockerd.docker("network", "create", "--internal", "mm-internal")
    gateway = dockerd.docker("network", "inspect", "-f", "{{(index .IPAM.Config 0).Gateway}}",
                             "mm-internal")
    # 5 pings of 1000 bytes to the network's gateway (the host's bridge), and their replies.
    run(dockerd, "talker", f"ping -c 5 -i 0.2 -s 1000 {gateway}; sleep 600",
        network="mm-internal")
    collector = from_config({"url": dockerd.url})

    def sent_and_received() -> tuple[float, float]:
        registry = scrape(collector)
        return (value(registry, "container_network_bytes_total", "talker", direction="transmit")
                or 0.0,
                value(registry, "container_network_bytes_total", "talker", direction="receive")
                or 0.0)

    wait_for(lambda: min(sent_and_received()) >= 5 * 1000, "5 KB each way")


def test_the_container_cap_counts_what_it_leaves_out(dockerd):
    labelled = dockerd.docker("ps", "-aq", "--filter", "label=modelmon.model").split()
    if len(labelled) < 3:
        for i in range(3):
            run(dockerd, f"capped-{i}", "exit 0", detach=False)
        labelled = dockerd.docker("ps", "-aq", "--filter", "label=modelmon.model").split()
    registry = scrape(from_config({"url": dockerd.url, "max_containers": 2}))
    assert registry.get_sample_value("modelmon_containers_unreported") == len(labelled) - 2
    states = [s for f in registry.collect() if f.name == "modelmon_container_state"
              for s in f.samples if s.value == 1]
    assert len(states) == 2


def test_a_dead_socket_is_success_0_not_a_failed_scrape(tmp_path, caplog):
    dead = f"unix://{tmp_path}/docker.sock"
    collectors = PluginCollectors({"docker": {"url": dead, "timeout": "2s"}})
    assert "docker" in collectors.collectors
    registry = scrape(collectors)
    scrape(collectors)
    assert registry.get_sample_value("modelmon_collector_success", {"collector": "docker"}) == 0
    assert registry.get_sample_value("modelmon_collector_success", {"collector": "build_info"}) == 1
    assert registry.get_sample_value("modelmon_collector_duration_seconds",
                                     {"collector": "docker"}) < 5
    unavailable = [r for r in caplog.records if "unavailable" in r.getMessage()]
    assert len(unavailable) == 1, "logged once, not on every scrape"
    assert "plugins.docker.url" in unavailable[0].getMessage()


def test_modelmon_serve_exports_the_containers(dockerd):
    run(dockerd, "served", "sleep 600")
    app = create_app(serve_config_from_mapping({"plugins": {"docker": {"url": dockerd.url}}}),
                     registry=CollectorRegistry())
    body = app.test_client().get("/metrics").get_data(as_text=True)
    assert 'modelmon_collector_success{collector="docker"} 1.0' in body
    assert ('modelmon_container_state{container="served",model="churn",state="running",'
            'version="3"} 1.0') in body


def test_the_edge_agent_runs_it_when_listed(dockerd, tmp_path: Path):
    run(dockerd, "at-the-edge", "sleep 600")
    config = edge_config_from_mapping({
        "plugins": {"docker": {"url": dockerd.url}},
        "edge": {"device_id": "press-7", "listen": None, "collectors": ["system", "docker"],
                 "spool": {"path": str(tmp_path / "state")},
                 "remote_write": {"url": "http://127.0.0.1:9/api/v1/write"}},
    })
    agent = EdgeAgent(config, CollectorRegistry())
    try:
        assert set(agent.plugins.collectors) == {"system", "docker"}
        registry = scrape(agent.plugins)
        assert registry.get_sample_value(
            "modelmon_container_state",
            {"model": "churn", "version": "3", "container": "at-the-edge", "state": "running"},
        ) == 1
    finally:
        agent.stop()


def test_close_releases_the_client_and_its_threads(dockerd):
    # What the edge agent calls when a bundle replaces the collector (or it stops).
    run(dockerd, "closing", "sleep 600")
    collector = from_config({"url": dockerd.url})
    assert isinstance(collector, DockerCollector)
    scrape(collector)
    pool = collector._executor
    assert pool is not None and collector._client is not None
    threads = list(pool._threads)
    assert threads and all(t.is_alive() for t in threads)
    collector.close()
    for thread in threads:
        thread.join(10)
    assert not any(t.is_alive() for t in threads) and collector._client is None


def test_gpu_processes_are_joined_to_their_container(dockerd):
    """The nvml collector sums GPU memory per container_id, read from the process's cgroup."""
    run(dockerd, "gpu-user", "sleep 600")
    pid = int(dockerd.docker("inspect", "-f", "{{.State.Pid}}", "gpu-user"))
    full_id = dockerd.docker("inspect", "-f", "{{.Id}}", "gpu-user")
    assert container_id(pid) == full_id[:12]
    assert container_id(os.getpid()) == "", "the test itself runs outside any container"


def test_the_container_alerts_fire_on_a_real_prometheus(dockerd, tmp_path: Path):
    """modelmon serve with the docker collector, scraped by a real Prometheus that
    evaluates the generated rules: an OOM kill, a crash loop and a container at
    its memory limit each fire their alert; a quiet container fires none."""
    from werkzeug.serving import make_server

    from modelmon.alerting import render_all, thresholds_from_mapping
    from modelmon.demo.processes import free_port, prometheus_config, running_prometheus

    thresholds = thresholds_from_mapping({"evaluation_interval": "1s", "containers": {
        "oom_window": "1m", "restarts_window": "1m", "max_restarts": 2,
        "memory_limit_for": "2s"}})
    rules = tmp_path / "modelmon.rules.yml"
    rules.write_text(render_all(thresholds)["modelmon.rules.yml"])
    app = create_app(serve_config_from_mapping({"plugins": {"docker": {"url": dockerd.url}}}),
                     registry=CollectorRegistry())
    port = free_port()
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    # Not 1s: the daemon answers a stats request at its next one-second tick, so a
    # collection takes up to a second and a 1s scrape timeout would cut it off.
    config = prometheus_config([f"127.0.0.1:{port}"], scrape_interval="3s", job="modelmon")
    config["global"]["evaluation_interval"] = "1s"
    config["rule_files"] = [str(rules)]
    try:
        with running_prometheus(config, workdir=tmp_path / "prometheus") as prom:
            # Each starts after a few scrapes saw it at 0, as a real incident would.
            run(dockerd, "e2e-oom",
                "sleep 4; head -c 100000000 /dev/zero | tail -c 90000000 > /dev/null; sleep 600",
                "--memory", "16m", "--memory-swap", "16m")
            run(dockerd, "e2e-crash", "sleep 2; exit 1", "--restart", "on-failure:8")
            run(dockerd, "e2e-full", "head -c 62914560 /dev/zero > /data/blob; sleep 600",
                "--memory", "64m", "--tmpfs", "/data:size=80m")
            run(dockerd, "e2e-quiet", "sleep 600", "--memory", "64m")

            def firing() -> dict[str, set[str]]:
                out: dict[str, set[str]] = {}
                for sample in prom.query('ALERTS{alertstate="firing"}'):
                    labels = sample["metric"]
                    out.setdefault(labels["alertname"], set()).add(labels.get("container", ""))
                return out

            expected = {"ModelContainerOomKilled": "e2e-oom",
                        "ModelContainerRestarting": "e2e-crash",
                        "ModelContainerMemoryNearLimit": "e2e-full"}
            try:
                wait_for(lambda: all(c in firing().get(a, set()) for a, c in expected.items()),
                         f"{expected} to fire", timeout=60)
            except AssertionError as exc:
                counters = prom.query('{__name__=~"modelmon_container_(oom_kills|restarts)_total"}')
                raise AssertionError(f"{exc}; firing: {firing()}; counters: {counters}") from None
            now = firing()
            assert not any("e2e-quiet" in containers for containers in now.values()), now
            assert "e2e-full" not in now.get("ModelContainerOomKilled", set()), now
    finally:
        server.shutdown()
