from __future__ import annotations

import pytest

from modelmon.config import ConfigError
from modelmon.exporters.edge import edge_config_from_mapping, load_edge_config

ISSUE_EXAMPLE = """
device_id: press-line-7
interval: 10s
listen: 127.0.0.1:9108
collectors: [system]
spool: {path: /var/lib/modelmon/edge, max_bytes: 512MiB, max_age: 7d, full_policy: drop_oldest}
remote_write:
  url: https://prom.example/api/v1/write
  basic_auth: {username: edge, password_file: pw}
  max_samples_per_send: 2000
  backfill_rate_limit: 20000
  order: fifo
"""


def test_the_example_of_the_issue_loads(tmp_path) -> None:
    (tmp_path / "pw").write_text("secret\n")
    path = tmp_path / "edge.yaml"
    path.write_text(ISSUE_EXAMPLE)
    config = load_edge_config(path)
    assert config.device_id == "press-line-7"
    assert config.interval == 10.0
    assert config.listen == ("127.0.0.1", 9108)
    assert config.spool.max_bytes == 512 * 2**20 and config.spool.max_age == 7 * 86400
    assert config.remote_write.auth.password_file == tmp_path / "pw"
    assert config.remote_write.backfill_rate_limit == 20000
    assert config.status_file == config.spool.path / "status.json"


def test_an_edge_section_of_the_shared_file_loads_with_prefix_and_plugins(tmp_path) -> None:
    path = tmp_path / "modelmon.yaml"
    path.write_text("prefix: acme_\nplugins: {system: {mountpoints: [/]}}\nedge:\n"
                    + "\n".join("  " + line for line in ISSUE_EXAMPLE.replace(
                        "{username: edge, password_file: pw}", "{username: edge, password: x}"
                    ).splitlines()))
    config = load_edge_config(path)
    assert config.prefix == "acme_" and config.plugins == {"system": {"mountpoints": ["/"]}}


def _base(**overrides):
    edge = {"device_id": "d", "spool": {"path": "/tmp/x"},
            "remote_write": {"url": "http://127.0.0.1:9090/api/v1/write"}}
    for key, value in overrides.items():
        section, _, field = key.partition("__")
        if field:
            edge[section] = {**edge[section], field: value}
        else:
            edge[section] = value
    return {"edge": edge}


@pytest.mark.parametrize("overrides,field", [
    ({"interval": "often"}, "edge.interval"),
    ({"spool__max_bytes": "lots"}, "edge.spool.max_bytes"),
    ({"spool__full_policy": "panic"}, "edge.spool.full_policy"),
    ({"remote_write__order": "random"}, "edge.remote_write.order"),
    ({"remote_write__url": "prom:9090"}, "edge.remote_write.url"),
    ({"remote_write__max_samples_per_send": 0}, "edge.remote_write.max_samples_per_send"),
    ({"remote_write__backfill_rate_limit": -5}, "edge.remote_write.backfill_rate_limit"),
    ({"remote_write__basic_auth": {"username": "u", "password_file": "/nonexistent/pw"}},
     "edge.remote_write"),
    ({"remote_write__bogus": 1}, "edge.remote_write.bogus"),
    ({"listen": "9108"}, "edge.listen"),
    ({"labels": {"device": "x"}}, "edge.labels.device"),
    ({"device_id": "has space"}, "edge.device_id"),
    ({"collectors": "system"}, "edge.collectors"),
])
def test_errors_name_the_field(overrides, field) -> None:
    with pytest.raises(ConfigError) as err:
        edge_config_from_mapping(_base(**overrides))
    assert str(err.value).startswith(field), str(err.value)


def test_missing_sections_are_named() -> None:
    with pytest.raises(ConfigError, match=r"^edge.remote_write: required"):
        edge_config_from_mapping({"edge": {"device_id": "d", "spool": {"path": "/x"}}})
    with pytest.raises(ConfigError, match=r"^edge.device_id: required"):
        edge_config_from_mapping({"edge": {}})


def test_backfill_rate_limit_null_means_unlimited() -> None:
    config = edge_config_from_mapping(_base(remote_write__backfill_rate_limit=None))
    assert config.remote_write.backfill_rate_limit is None
