"""``modelmon logs``: setup-es against the wire contract; dead letters listed
while the shipper runs, replayed after a fix, delivered by the next shipper."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from modelmon.cli import main


def modelmon(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "modelmon", *args], capture_output=True,
                          text=True, timeout=60)


def test_setup_es_installs_template_and_ilm_policy(es: Any) -> None:
    proc = modelmon("logs", "setup-es", "--url", es.url, "--template", "modelmon-logs-test",
                    "--policy", "modelmon-logs-test", "--index-pattern", "logs-modelmontest-*")
    assert proc.returncode == 0, proc.stderr
    from elasticsearch import Elasticsearch

    client = Elasticsearch(es.url)
    tpl = client.indices.get_index_template(name="modelmon-logs-test")["index_templates"][0]
    body = tpl["index_template"]
    assert body["index_patterns"] == ["logs-modelmontest-*"] and "data_stream" in body
    assert body["template"]["settings"]["index.lifecycle.name"] == "modelmon-logs-test" or (
        body["template"]["settings"]["index"]["lifecycle"]["name"] == "modelmon-logs-test")
    policy = client.ilm.get_lifecycle(name="modelmon-logs-test")["modelmon-logs-test"]
    assert "delete" in policy["policy"]["phases"]


def test_setup_es_without_a_server_names_the_fix(capsys: Any) -> None:
    assert main(["logs", "setup-es"]) == 2
    assert "set url" in capsys.readouterr().err


def test_dead_letters_list_replay_and_deliver(
    scriptable_es: Any, index_name: str, make_shipper: Any, tmp_path: Path, capsys: Any
) -> None:
    poisoned = {"on": True}

    def fault(index: str, doc_id: str, source: Any) -> tuple[int, str, str] | None:
        if poisoned["on"] and source.get("bad"):
            return 400, "mapper_parsing_exception", "failed to parse field [bad]"
        return None

    scriptable_es.item_fault = fault
    shipper = make_shipper(sink="elasticsearch", url=scriptable_es.url, index=index_name)
    shipper.emit({"message": "good"})
    shipper.emit({"message": "poison", "bad": True})
    assert shipper.flush(20)
    spool_dir = str(tmp_path / "spool")
    # list works while the shipper runs (read-only)
    assert main(["logs", "dead-letter", "list", "--spool-dir", spool_dir, "--json"]) == 0
    [line] = capsys.readouterr().out.strip().splitlines()
    letter = json.loads(line)
    assert letter["reason"].startswith("400 mapper_parsing_exception")
    assert json.loads(letter["document"])["message"] == "poison"
    # replay needs the spool: refused while the shipper owns it
    assert main(["logs", "dead-letter", "replay", "--spool-dir", spool_dir]) == 1
    shipper.close()
    poisoned["on"] = False  # the mapping was fixed
    assert main(["logs", "dead-letter", "replay", "--spool-dir", spool_dir]) == 0
    again = make_shipper(sink="elasticsearch", url=scriptable_es.url, index=index_name)
    assert again.flush(20)
    messages = sorted(d["message"] for d in scriptable_es.docs(index_name).values())
    assert messages == ["good", "poison"]
    capsys.readouterr()
    assert main(["logs", "status", "--spool-dir", spool_dir, "--json"]) == 0
    [row] = json.loads(capsys.readouterr().out)
    assert row["pending"] == 0 and row["dead_letters_stored"] == 0 and row["delivered"] == 2
