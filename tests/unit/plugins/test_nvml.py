"""The nvml collector: without a GPU it stays out by default, and when asked
for (enabled: true) reports itself absent once with success 0; on a machine
with an NVIDIA GPU it reads real figures (skipped elsewhere, with the reason)."""

from __future__ import annotations

import logging

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from modelmon.collectors import PluginCollectors
from modelmon.plugins.nvml import NvmlCollector, NvmlUnavailable, container_id, from_config


def _gpu_absence() -> str | None:
    try:
        NvmlCollector().start()
    except NvmlUnavailable as exc:
        return str(exc)
    return None


ABSENT = _gpu_absence()
needs_gpu = pytest.mark.skipif(ABSENT is not None, reason=f"no NVIDIA GPU here: {ABSENT}")
without_gpu = pytest.mark.skipif(ABSENT is None, reason="this machine has an NVIDIA GPU")


@without_gpu
def test_auto_registers_nothing_without_a_gpu():
    assert from_config({}) is None
    assert "nvml" not in PluginCollectors().collectors


@without_gpu
def test_enabled_without_a_gpu_is_success_0_logged_once(caplog):
    collectors = PluginCollectors({"nvml": {"enabled": True}})
    registry = CollectorRegistry()
    registry.register(collectors)
    with caplog.at_level(logging.WARNING, logger="modelmon.collectors"):
        for _ in range(3):
            text = generate_latest(registry).decode()
    assert registry.get_sample_value("modelmon_collector_success", {"collector": "nvml"}) == 0
    assert "modelmon_gpu_" not in text
    absent = [r for r in caplog.records if "'nvml' unavailable" in r.getMessage()]
    assert len(absent) == 1, "reported once, not on every scrape"
    assert "plugins.nvml.enabled" in absent[0].getMessage()


@pytest.mark.parametrize("config, field", [
    ({"enabled": "yes"}, "plugins.nvml.enabled"),
    ({"max_gpus": 0}, "plugins.nvml.max_gpus"),
    ({"gpus": [0]}, "plugins.nvml: unknown key(s) gpus"),
])
def test_bad_settings_name_the_field(config, field):
    with pytest.raises(ValueError, match=field.replace("(", r"\(").replace(")", r"\)")):
        from_config(config)


def test_container_id_of_a_process_outside_containers_is_empty(tmp_path):
    assert container_id(1 << 30) == "", "a pid that does not exist"
    (tmp_path / "42").mkdir()
    (tmp_path / "42" / "cgroup").write_text("0::/user.slice/user-1000.slice/session-2.scope\n")
    assert container_id(42, tmp_path) == ""
    long_id = "ab" * 32
    for line in (f"4:memory:/docker/{long_id}\n", f"0::/system.slice/docker-{long_id}.scope\n",
                 f"0::/kubepods/burstable/pod1/cri-containerd-{long_id}\n"):
        (tmp_path / "42" / "cgroup").write_text(line)
        assert container_id(42, tmp_path) == long_id[:12], line


@needs_gpu
def test_real_gpus_report_their_figures():
    registry = CollectorRegistry()
    registry.register(NvmlCollector())
    generate_latest(registry)
    gpus = [s.labels["gpu"] for f in registry.collect() if f.name == "modelmon_gpu_info"
            for s in f.samples]
    assert gpus, "NVML started, so there is a GPU"
    for gpu in gpus:
        used = registry.get_sample_value("modelmon_gpu_memory_used_bytes", {"gpu": gpu})
        total = registry.get_sample_value("modelmon_gpu_memory_total_bytes", {"gpu": gpu})
        assert 0 <= used <= total and total > 0
        utilization = registry.get_sample_value("modelmon_gpu_utilization_ratio", {"gpu": gpu})
        assert utilization is None or 0 <= utilization <= 1
