"""Promise 6, encrypted at rest: with a key configured no plaintext of a
record rests in any file of the spool; keys rotate (new writes under the new
key, older records still open); a missing or wrong key stops the spool at
start, naming the key ids; a record no key opens is dead-lettered, counted."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from modelmon import plugin_manager
from modelmon.config import ConfigError
from modelmon.hookspecs import hookimpl
from modelmon.spool import Spool
from modelmon.spool.crypto import OVERHEAD, SpoolCipher, SpoolKeyMismatch, key_id
from modelmon.spool.keys import cipher_from_config, encryption_section

pytest.importorskip("cryptography")

KEY_A = bytes(range(32))
KEY_B = bytes(range(100, 132))
MARKER = b"PLAINTEXT-MARKER-7f3a"


def every_byte(directory: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file())


def open_spool(path: Path, *keys: bytes, **kw: Any) -> Spool:
    cipher = SpoolCipher(list(keys)) if keys else None
    return Spool(path, max_bytes=1 << 26, max_age=None, cipher=cipher, **kw)


@pytest.mark.parametrize("fsync", ["interval", "always", "never"])
def test_no_plaintext_rests_in_any_file_of_the_spool(tmp_path: Path, fsync: str) -> None:
    path = tmp_path / "spool"
    spool = open_spool(path, KEY_A, fsync=fsync)
    payloads = [b'{"message": "%s %d"}' % (MARKER, i) for i in range(300)]
    for p in payloads[:100]:
        spool.append(p)
    spool.append_many(payloads[100:])
    # Still in the journal (not yet in SQLite) and in SQLite: both sealed.
    assert MARKER not in every_byte(path)
    assert spool.flush_buffer()
    assert MARKER not in every_byte(path)
    records = spool.peek(1000)
    assert [r.payload for r in records] == payloads  # opened for the destination
    spool.dead_letter([records[0].seq], "mapping")
    assert spool.dead_letters()[0].payload == payloads[0]
    assert MARKER not in every_byte(path)
    spool.close()
    assert MARKER not in every_byte(path)
    with open_spool(path, KEY_A) as again:
        assert again.stats().pending == 299 and again.stats().balanced


def test_rotation_new_writes_use_the_new_key_older_records_still_open(tmp_path: Path) -> None:
    path = tmp_path / "spool"
    with open_spool(path, KEY_A) as spool:
        spool.append(b"written under A")
    with open_spool(path, KEY_B, KEY_A) as spool:  # B seals, A still opens
        spool.append(b"written under B")
        assert spool.flush_buffer()
        assert [r.payload for r in spool.peek(10)] == [b"written under A", b"written under B"]
    conn = sqlite3.connect(path / "spool.db")
    ids = [bytes(p[4:12]).decode() for (p,) in
           conn.execute("SELECT payload FROM records ORDER BY seq")]
    conn.close()
    assert ids == [key_id(KEY_A), key_id(KEY_B)]  # each record names its key


def test_a_missing_key_fails_at_start_and_loses_nothing(tmp_path: Path) -> None:
    path = tmp_path / "spool"
    with open_spool(path, KEY_A) as spool:
        for i in range(5):
            spool.append(b"event %d" % i)
    with pytest.raises(SpoolKeyMismatch, match=key_id(KEY_A)):
        open_spool(path, KEY_B)  # the old key was not listed
    with pytest.raises(SpoolKeyMismatch, match="no encryption key is configured"):
        open_spool(path)
    with open_spool(path, KEY_B, KEY_A) as spool:  # the lock was released, nothing dropped
        stats = spool.stats()
        assert stats.pending == 5 and stats.dropped_total == 0 and stats.dead_lettered == 0


def test_an_altered_record_is_dead_lettered_and_counted_not_a_crash_loop(tmp_path: Path) -> None:
    path = tmp_path / "spool"
    spool = open_spool(path, KEY_A)
    for i in range(3):
        spool.append(b"event %d" % i)
    assert spool.flush_buffer()
    spool.close()
    conn = sqlite3.connect(path / "spool.db")
    (payload,) = conn.execute("SELECT payload FROM records WHERE seq = 2").fetchone()
    flipped = bytearray(payload)
    flipped[-1] ^= 1  # the tag no longer matches
    conn.execute("UPDATE records SET payload = ? WHERE seq = 2", (bytes(flipped),))
    conn.commit()
    conn.close()
    with open_spool(path, KEY_A) as spool:
        assert [r.payload for r in spool.peek(10)] == [b"event 0", b"event 2"]
        assert [seq for seq, _ in spool.peek_payloads(10)] == [1, 3]
        stats = spool.stats()
        assert stats.dead_lettered == 1 and stats.storage_errors.get("decrypt") == 1
        assert stats.balanced
        (dead,) = spool.dead_letters()
        assert dead.seq == 2 and dead.reason.startswith("undecryptable")


def test_overhead_is_forty_bytes_a_record() -> None:
    cipher = SpoolCipher([KEY_A])
    assert len(cipher.seal(b"x" * 100)) == 100 + OVERHEAD == 140
    assert cipher.open(b"written before encryption was on") == b"written before encryption was on"


# -- configuration ---------------------------------------------------------------


def test_keys_from_a_file_or_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "k").write_text(KEY_A.hex() + "\n")
    monkeypatch.setenv("SPOOL_KEY_B", KEY_B.hex())
    section = encryption_section({"key_env": "SPOOL_KEY_B", "previous_keys": [{"key_file": "k"}]},
                                 "edge.spool.encryption", tmp_path)
    cipher = cipher_from_config(section, "edge.spool.encryption")
    assert cipher is not None
    assert cipher.current_id == key_id(KEY_B)
    assert cipher.key_ids == {key_id(KEY_A), key_id(KEY_B)}


@pytest.mark.parametrize(("section", "field"), [
    ({"key_env": "NOT_SET_ANYWHERE"}, "edge.spool.encryption.key_env"),
    ({"key_file": "/nonexistent/spool.key"}, "edge.spool.encryption.key_file"),
    ({"key_file": "short.key"}, "edge.spool.encryption.key_file"),
    ({"key_file": "a", "key_env": "B"}, "edge.spool.encryption"),
    ({"keyfile": "a"}, "edge.spool.encryption"),
    ({"key_env": "OK_KEY", "previous_keys": [{"key_env": "NOT_SET_ANYWHERE"}]},
     "edge.spool.encryption.previous_keys[0].key_env"),
    ({"kms": {"provider": "nowhere"}}, "edge.spool.encryption.kms.provider"),
])
def test_bad_key_settings_name_the_field(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                         section: dict[str, Any], field: str) -> None:
    (tmp_path / "short.key").write_text("abc123\n")
    monkeypatch.setenv("OK_KEY", KEY_A.hex())
    monkeypatch.delenv("NOT_SET_ANYWHERE", raising=False)
    with pytest.raises(ConfigError) as info:
        checked = encryption_section(section, "edge.spool.encryption", tmp_path)
        cipher_from_config(checked, "edge.spool.encryption")
    assert str(info.value).startswith(field + ":"), str(info.value)
    assert KEY_A.hex() not in str(info.value)  # never a key in a message


class KmsPlugin:
    @hookimpl
    def modelmon_register_spool_key_providers(self, register: Any) -> None:
        def provider(settings: Any) -> list[bytes]:
            if settings.get("fail"):
                raise ConnectionError("KMS unreachable")
            return [KEY_B, KEY_A]

        register("test-kms", provider)


@pytest.fixture
def kms() -> Iterator[None]:
    pm = plugin_manager.get_plugin_manager()
    plugin = KmsPlugin()
    pm.register(plugin, name="test-kms")
    pm.check_pending()
    yield
    pm.unregister(plugin)


def test_keys_from_a_kms_plugin(kms: None, tmp_path: Path) -> None:
    cipher = cipher_from_config({"kms": {"provider": "test-kms"}}, "logs.spool.encryption")
    assert cipher is not None and cipher.current_id == key_id(KEY_B)
    with pytest.raises(ConfigError, match=r"^logs.spool.encryption.kms: .*KMS unreachable"):
        cipher_from_config({"kms": {"provider": "test-kms", "fail": True}},
                           "logs.spool.encryption")


def test_without_the_cryptography_package_the_message_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "cryptography.hazmat.primitives.ciphers.aead", None)
    with pytest.raises(ConfigError, match=r"modelmon\[encryption\]"):
        SpoolCipher([KEY_A])


def test_env_key_is_not_kept_in_the_environment_of_the_message(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BAD_KEY", "zz" * 32)
    with pytest.raises(ConfigError) as info:
        cipher_from_config({"key_env": "BAD_KEY"}, "logs.spool.encryption")
    assert "zz" * 32 not in str(info.value)
    assert os.environ["BAD_KEY"]  # untouched


def test_an_old_key_is_needed_only_while_records_sealed_under_it_are_pending(
    tmp_path: Path,
) -> None:
    path = tmp_path / "spool"
    with open_spool(path, KEY_A) as spool:
        spool.append(b"delivered under A")
        spool.append(b"dead-lettered under A")
        assert spool.flush_buffer()
        first, second = (r.seq for r in spool.peek(10))
        spool.ack([first])
        spool.dead_letter([second], "mapping")
    with open_spool(path, KEY_B) as spool:  # nothing pending needs A: A may go
        spool.append(b"under B")
        assert spool.flush_buffer()
        spool.ack([r.seq for r in spool.peek(10)])
        assert spool.replay_dead_letters() == 1  # a record sealed under A is pending again
    with pytest.raises(SpoolKeyMismatch, match=key_id(KEY_A)):
        open_spool(path, KEY_B)
    with open_spool(path, KEY_B, KEY_A) as spool:
        assert [r.payload for r in spool.peek(10)] == [b"dead-lettered under A"]
