from __future__ import annotations

from pathlib import Path

import pytest

from chatauth import ConfigurationError, from_settings
from chatauth.config import normalize_settings, store_from_url
from chatauth.stores.memory import MemoryStore
from chatauth.stores.sqlite import SQLiteStore


def test_provider_is_required() -> None:
    with pytest.raises(ConfigurationError) as info:
        from_settings({})
    assert info.value.setting == "PROVIDER"


def test_unknown_provider_lists_the_choices() -> None:
    with pytest.raises(ConfigurationError, match="matrix"):
        from_settings({"PROVIDER": "nope"})


def test_missing_secret_has_the_api_key_code_and_names_the_key() -> None:
    with pytest.raises(ConfigurationError) as info:
        from_settings({"PROVIDER": "jwt", "STORE": "memory://"})
    assert info.value.code == "ERROR_API_KEY_NOT_FOUND"
    assert info.value.setting == "JWT_SECRET"


def test_missing_matrix_admin_token() -> None:
    with pytest.raises(ConfigurationError) as info:
        from_settings(
            {
                "PROVIDER": "matrix",
                "MATRIX_HOMESERVER_URL": "http://127.0.0.1:1",
                "STORE": "memory://",
            }
        )
    assert info.value.code == "ERROR_API_KEY_NOT_FOUND"
    assert info.value.setting == "MATRIX_ADMIN_TOKEN"


def test_typo_is_refused_not_ignored() -> None:
    with pytest.raises(ConfigurationError) as info:
        from_settings({"PROVIDER": "jwt", "JWT_SECRET": "x" * 32, "TOKEN_TL": 60})
    assert info.value.setting == "TOKEN_TL"


def test_secret_values_never_reach_messages() -> None:
    secret = "super-secret-value-1234567890"
    with pytest.raises(ConfigurationError) as info:
        from_settings({"PROVIDER": "jwt", "JWT_SECRET": secret, "TIMEOUT": "soon"})
    assert secret not in str(info.value) and secret not in repr(info.value)


def test_refresh_margin_must_be_shorter_than_ttl() -> None:
    with pytest.raises(ConfigurationError) as info:
        from_settings(
            {
                "PROVIDER": "jwt",
                "JWT_SECRET": "x" * 32,
                "STORE": "memory://",
                "TOKEN_TTL": 60,
                "REFRESH_MARGIN": 300,
            }
        )
    assert info.value.setting == "REFRESH_MARGIN"


def test_normalize_settings_strips_a_prefix() -> None:
    config = {"CHATAUTH_PROVIDER": "jwt", "CHATAUTH_JWT_SECRET": "s", "SECRET_KEY": "flask"}
    assert normalize_settings(config, "CHATAUTH_") == {"provider": "jwt", "jwt_secret": "s"}


def test_store_urls(tmp_path: Path) -> None:
    assert isinstance(store_from_url("memory://"), MemoryStore)
    store = store_from_url(f"sqlite:///{tmp_path}/a.db")
    assert isinstance(store, SQLiteStore) and store.path == tmp_path / "a.db"
    store.close()
    with pytest.raises(ConfigurationError):
        store_from_url("mongodb://x")
    with pytest.raises(ConfigurationError):
        store_from_url("sqlite://")


def test_ignored_keys_are_left_to_the_integration() -> None:
    chat = from_settings(
        {"PROVIDER": "jwt", "JWT_SECRET": "x" * 32, "STORE": "memory://", "URL_PREFIX": "/chat"},
        ignore=["url_prefix"],
    )
    assert chat.provider.name == "jwt"
    chat.close()
