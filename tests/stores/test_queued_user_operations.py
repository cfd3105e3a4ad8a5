"""A queued chat-user operation (chatauth.chat_users) is kept by every store as it keeps a
pending revocation: no schema change, the operation and the profile to push survive the round
trip (encrypted too), and the service finishes it from there once the provider answers."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from chatauth import ChatAuth, ChatIdentity
from chatauth.chat_users import is_queued_operation, queued_entry
from chatauth.providers.cometchat import CometChatProvider
from chatauth.stores.base import BaseStore
from chatauth.stores.crypto import FernetCipher, generate_key
from chatauth.stores.memory import MemoryStore
from chatauth.stores.redis import RedisStore
from chatauth.stores.sql import SQLAlchemyStore
from chatauth.stores.sqlite import SQLiteStore
from chatauth.testing.cometchat import DEFAULT_API_KEY, CometChatEmulator

KINDS = ["memory", "sqlite", "sqlite-encrypted", "sql-sqlite", "sql-postgresql", "redis"]


@pytest.fixture(params=KINDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BaseStore]:
    kind = request.param
    made: BaseStore
    if kind == "memory":
        made = MemoryStore()
    elif kind == "sqlite":
        made = SQLiteStore(tmp_path / "s.db")
    elif kind == "sqlite-encrypted":
        made = SQLiteStore(tmp_path / "s.db", cipher=FernetCipher(generate_key()))
    elif kind == "sql-sqlite":
        made = SQLAlchemyStore.from_url(f"sqlite+pysqlite:///{tmp_path / 'sql.db'}")
    elif kind == "sql-postgresql":
        request.applymarker(pytest.mark.postgres)
        server = request.getfixturevalue("postgres_server")
        made = SQLAlchemyStore.from_url(
            server.create_database(f"chatauth_ops_{uuid.uuid4().hex[:8]}")
        )
    else:
        request.applymarker(pytest.mark.redis)
        made = RedisStore.from_url(
            request.getfixturevalue("redis_server").url, prefix=f"ops-{secrets.token_hex(4)}"
        )
    yield made
    made.close()


def test_a_queued_operation_round_trips(store: BaseStore) -> None:
    identity = ChatIdentity("user-ops", name="Ada Lovelace", avatar="https://example.org/a.png")
    store.add_pending(queued_entry("update", identity, "cometchat"), "ERROR_PROVIDER_UNAVAILABLE")
    store.add_pending(queued_entry("erase", ChatIdentity("user-gone"), "cometchat"), "HTTP_503")
    update, erase = store.pending()
    assert is_queued_operation(update.token) and is_queued_operation(erase.token)
    assert update.token.data["name"] == "Ada Lovelace"
    assert update.token.data["avatar"] == "https://example.org/a.png"
    assert (update.token.uid, update.last_error) == ("user-ops", "ERROR_PROVIDER_UNAVAILABLE")
    assert erase.token.uid == "user-gone" and "name" not in erase.token.data
    assert update.token.expires_at is None  # never dropped as an expired token


def test_the_service_finishes_it_from_the_store(
    store: BaseStore, cometchat_emulator: CometChatEmulator
) -> None:
    provider = CometChatProvider(
        cometchat_emulator.app_id,
        DEFAULT_API_KEY,
        region=cometchat_emulator.region,
        base_url=cometchat_emulator.base_url,
    )
    chat = ChatAuth(provider, store)
    try:
        cometchat_emulator.create_user("user-ops", name="Before")
        cometchat_emulator.faults.status(503, times=50)
        change = chat.update_chat_user(ChatIdentity("user-ops", name="After"))
        cometchat_emulator.faults.clear()
        assert not change.done and store.count_pending() == 1
        report = chat.revoke_pending()
        assert (report.revoked, report.remaining) == (1, 0)
        assert cometchat_emulator.users["user-ops"]["name"] == "After"
    finally:
        chat.http_client.close()
