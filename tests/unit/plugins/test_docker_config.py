"""plugins.docker settings: where the collector registers, and errors that name the field."""

from __future__ import annotations

import pytest

from modelmon.plugins.docker import DEFAULT_URL, DockerCollector, from_config


def test_enabled_false_registers_nothing_even_with_a_url():
    assert from_config({"enabled": False, "url": "unix:///run/x.sock"}) is None


def test_url_from_the_config_then_docker_host():
    collector = from_config({"url": "tcp://10.0.0.5:2375"}, environ={"DOCKER_HOST": "unix:///a"})
    assert isinstance(collector, DockerCollector) and collector.url == "tcp://10.0.0.5:2375"
    collector = from_config({}, environ={"DOCKER_HOST": "unix:///run/user/1000/docker.sock"})
    assert collector is not None and collector.url == "unix:///run/user/1000/docker.sock"


def test_auto_registers_only_where_the_default_socket_may_be_used(tmp_path, monkeypatch):
    import modelmon.plugins.docker as docker_plugin

    sock = tmp_path / "docker.sock"
    monkeypatch.setattr(docker_plugin, "_default_socket", lambda: sock)
    assert from_config({}, environ={}) is None  # no socket: no Docker here
    sock.touch(mode=0o600)
    assert from_config({}, environ={}) is not None
    monkeypatch.setattr(docker_plugin.os, "access", lambda path, mode: False)
    assert from_config({}, environ={}) is None  # a socket modelmon's user may not open


def test_enabled_true_uses_the_default_socket():
    collector = from_config({"enabled": True}, environ={})
    assert collector is not None and collector.url == DEFAULT_URL


def test_settings_are_applied():
    collector = from_config({"url": "unix:///x", "timeout": "2s", "max_containers": 7,
                             "prefix": "acme_"}, environ={})
    assert collector is not None
    assert (collector.timeout, collector.max_containers, collector.prefix) == (2.0, 7, "acme_")


@pytest.mark.parametrize("config, message", [
    ({"enabled": "yes"}, "plugins.docker.enabled: expected true, false or auto"),
    ({"url": 2375}, "plugins.docker.url: expected a URL"),
    ({"url": "unix:///x", "max_containers": 0}, "plugins.docker.max_containers"),
    ({"url": "unix:///x", "timeout": "soon"}, "plugins.docker.timeout"),
    ({"socket": "/var/run/docker.sock"}, r"plugins.docker: unknown key\(s\) socket; known:"),
])
def test_bad_settings_name_the_field(config, message):
    with pytest.raises(ValueError, match=message):
        from_config(config, environ={})
