"""FernetCipher: tokens encrypted at rest, key rotation, clear errors for wrong keys."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from chatauth import ChatIdentity, ConfigurationError, from_settings
from chatauth.stores.crypto import FernetCipher, generate_key
from chatauth.stores.sqlite import SQLiteStore
from chatauth.tokens import ChatToken, SessionKey, utcnow

SECRET_VALUE = "tok-secret-value-0123456789"


def test_round_trip_hides_the_plaintext() -> None:
    cipher = FernetCipher(generate_key())
    sealed = cipher.encrypt(SECRET_VALUE.encode())
    assert SECRET_VALUE.encode() not in sealed
    assert cipher.decrypt(sealed) == SECRET_VALUE.encode()
    assert cipher.encrypt(b"x") != cipher.encrypt(b"x")  # random IV per message


def test_a_wrong_key_is_a_configuration_error_naming_the_setting() -> None:
    right, wrong = generate_key(), generate_key()
    sealed = FernetCipher(right).encrypt(SECRET_VALUE.encode())
    with pytest.raises(ConfigurationError) as info:
        FernetCipher(wrong).decrypt(sealed)
    assert info.value.setting == "STORE_ENCRYPTION_KEY"
    assert info.value.code == "ERROR_CONFIG"
    assert "cannot be decrypted" in info.value.message
    for secret in (right, wrong, SECRET_VALUE):
        assert secret not in str(info.value)
        assert secret not in repr(info.value)
    assert info.value.__cause__ is None  # no cryptography internals chained in


def test_a_tampered_payload_is_refused_not_garbage() -> None:
    cipher = FernetCipher(generate_key())
    sealed = bytearray(cipher.encrypt(SECRET_VALUE.encode()))
    sealed[40] = ord("A") if sealed[40] != ord("A") else ord("B")
    with pytest.raises(ConfigurationError):
        cipher.decrypt(bytes(sealed))


def test_plaintext_written_before_encryption_was_enabled_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="without encryption"):
        FernetCipher(generate_key()).decrypt(b'{"value": "x"}')


@pytest.mark.parametrize("bad", ["", " , ", "not-a-key", "c2hvcnQ=", b"\xff\xfe"])
def test_malformed_keys_are_refused_without_showing_them(bad: str | bytes) -> None:
    with pytest.raises(ConfigurationError) as info:
        FernetCipher(bad)
    assert info.value.setting == "STORE_ENCRYPTION_KEY"
    if isinstance(bad, str) and bad.strip(" ,"):
        assert bad not in str(info.value)


def test_rotation_new_key_first_old_keys_still_decrypt() -> None:
    old, new = generate_key(), generate_key()
    written_under_old = FernetCipher(old).encrypt(b"old token")
    rotating = FernetCipher(f"{new}, {old}")
    assert rotating.key_count == 2
    assert rotating.decrypt(written_under_old) == b"old token"
    fresh = rotating.encrypt(b"new token")
    assert FernetCipher(new).decrypt(fresh) == b"new token"
    with pytest.raises(ConfigurationError):
        FernetCipher(old).decrypt(fresh)
    assert FernetCipher(new).decrypt(rotating.rotate(written_under_old)) == b"old token"
    assert FernetCipher([new.encode(), old]).decrypt(written_under_old) == b"old token"
    assert "keys=2" in repr(rotating)
    assert new not in repr(rotating)


def test_sqlite_store_with_a_cipher_keeps_no_token_in_clear(tmp_path: Path) -> None:
    key = generate_key()
    path = tmp_path / "tokens.sqlite3"
    store = SQLiteStore(path, cipher=FernetCipher(key))
    now = utcnow()
    token = ChatToken(SECRET_VALUE, "alice", "jwt", now, now + timedelta(hours=1))
    store.set(SessionKey("jwt", "alice", "s"), token)
    store.add_pending(token, "ERROR_PROVIDER_UNAVAILABLE")
    store.close()
    assert SECRET_VALUE.encode() not in path.read_bytes()
    for sidecar in tmp_path.glob("tokens.sqlite3-*"):
        assert SECRET_VALUE.encode() not in sidecar.read_bytes()

    reopened = SQLiteStore(path, cipher=FernetCipher(key))
    assert reopened.get(SessionKey("jwt", "alice", "s")) == token
    assert reopened.pending()[0].token == token
    reopened.close()

    wrong = SQLiteStore(path, cipher=FernetCipher(generate_key()))
    with pytest.raises(ConfigurationError, match="STORE_ENCRYPTION_KEY"):
        wrong.get(SessionKey("jwt", "alice", "s"))
    wrong.close()


def test_the_setting_encrypts_the_default_sqlite_store(tmp_path: Path) -> None:
    chat = from_settings(
        {
            "PROVIDER": "jwt",
            "JWT_SECRET": "settings-secret-0123456789abcdef",
            "STORE": f"sqlite:///{tmp_path / 'chat.sqlite3'}",
            "STORE_ENCRYPTION_KEY": generate_key(),
        }
    )
    session = chat.get_session(ChatIdentity("alice"), "s")
    assert isinstance(chat.store.cipher, FernetCipher)
    row = chat.store._read("SELECT payload FROM chatauth_tokens")[0][0]  # type: ignore[attr-defined]
    assert session.token.value.encode() not in row
    with pytest.raises(ValueError):
        json.loads(row)
    chat.close()


def test_import_chatauth_does_not_load_cryptography_or_redis() -> None:
    code = (
        "import sys, chatauth, chatauth.config\n"
        "print(sorted(m for m in ('cryptography', 'redis', 'chatauth.stores.crypto',"
        " 'chatauth.stores.redis') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).parents[2],
    )
    assert out.stdout.strip() == "[]"
