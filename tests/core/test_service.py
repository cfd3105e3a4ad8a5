from __future__ import annotations

import asyncio
import dataclasses
import threading
from collections.abc import Iterator
from datetime import timedelta

import pytest

from chatauth import (
    ChatAuth,
    ChatIdentity,
    NotAuthenticatedError,
    StoreUnavailableError,
    from_settings,
)
from chatauth.stores.memory import MemoryStore
from chatauth.tokens import SessionKey, utcnow
from tests.core.providers import (
    GATE_TIMEOUT,
    CountingProvider,
    Gate,
    GatedProvider,
    TokenRevokingProvider,
    UserRevokingProvider,
)


@pytest.fixture
def chat() -> Iterator[ChatAuth]:
    service = ChatAuth(CountingProvider(), MemoryStore())
    yield service
    service.close()


class AppUser:
    def __init__(self, pk: int, authenticated: bool = True) -> None:
        self.pk = pk
        self.is_authenticated = authenticated


def test_anonymous_users_get_no_session(chat: ChatAuth) -> None:
    with pytest.raises(NotAuthenticatedError):
        chat.get_session(None, "s")
    with pytest.raises(NotAuthenticatedError):
        chat.get_session(AppUser(1, authenticated=False), "s")


def test_fifty_threads_share_one_issue_call() -> None:
    gate = Gate()
    chat = ChatAuth(GatedProvider(), MemoryStore(), transport=gate.transport())
    waiting = threading.Condition()
    waiters: list[str] = []

    def saw_wait(key: str) -> None:
        with waiting:
            waiters.append(key)
            waiting.notify_all()

    chat._locks.on_wait = saw_wait
    values: list[str] = []

    def worker() -> None:
        values.append(chat.get_session(AppUser(1), "s").token.value)

    first = threading.Thread(target=worker)
    first.start()
    assert gate.entered.wait(GATE_TIMEOUT)  # the first caller is inside the provider call
    others = [threading.Thread(target=worker) for _ in range(49)]
    for t in others:
        t.start()
    with waiting:  # every other caller found the key held and is blocked behind the first
        assert waiting.wait_for(lambda: len(waiters) == 49, GATE_TIMEOUT)
    assert values == [] and all(t.is_alive() for t in [first, *others])
    gate.open()
    for t in [first, *others]:
        t.join(GATE_TIMEOUT)
    assert len(values) == 50 and len(set(values)) == 1
    assert set(waiters) == {SessionKey("jwt", "user-1", "s").digest}
    assert chat.provider.issued == 1  # type: ignore[attr-defined]
    assert gate.requests == 1
    assert len(chat._locks) == 0
    chat.close()


async def test_concurrent_tasks_share_one_issue_call() -> None:
    gate = Gate()
    chat = ChatAuth(GatedProvider(), MemoryStore(), transport=gate.async_transport())
    waiters: list[str] = []
    all_waiting = asyncio.Event()

    def saw_wait(key: str) -> None:
        waiters.append(key)
        if len(waiters) == 29:
            all_waiting.set()

    chat._async_locks().on_wait = saw_wait
    first = asyncio.create_task(chat.aget_session(AppUser(2), "s"))
    await gate.aentered()  # the first task is inside the provider call
    others = [asyncio.create_task(chat.aget_session(AppUser(2), "s")) for _ in range(29)]
    await asyncio.wait_for(all_waiting.wait(), GATE_TIMEOUT)
    assert not any(t.done() for t in [first, *others])  # all held behind the first
    gate.open()
    sessions = await asyncio.gather(first, *others)
    assert len({s.token.value for s in sessions}) == 1
    assert set(waiters) == {SessionKey("jwt", "user-2", "s").digest}
    assert chat.provider.issued == 1  # type: ignore[attr-defined]
    assert gate.requests == 1
    await chat.aclose()


def test_keys_do_not_block_each_other(chat: ChatAuth) -> None:
    tokens = {chat.get_session(AppUser(n), "s").token.value for n in range(5)}
    assert len(tokens) == 5
    assert chat.provider.issued == 5  # type: ignore[attr-defined]
    assert len(chat._locks) == 0  # per-key locks are dropped after use


def test_hooks_fire_and_a_failing_hook_does_not_fail_the_request(chat: ChatAuth) -> None:
    started: list[str] = []
    ended: list[int] = []

    def broken(_: object) -> None:
        raise RuntimeError("hook bug")

    chat.on_token_issued.extend([broken, lambda s: started.append(s.uid)])
    chat.on_session_ended.append(lambda identity, tokens: ended.append(len(tokens)))
    chat.get_session(AppUser(3), "s")
    chat.get_session(AppUser(3), "s")  # reuse: no second hook call
    chat.end_session(AppUser(3), "s")
    chat.end_session(AppUser(3), "s")  # nothing left: no hook call
    assert started == ["user-3"]
    assert ended == [1]


def test_refresh_revokes_the_replaced_token_for_token_revocation() -> None:
    provider = TokenRevokingProvider()
    chat = ChatAuth(provider, MemoryStore())
    old = chat.get_session(AppUser(4), "s").token
    key = SessionKey(provider.name, "user-4", "s")
    chat.store.set(key, dataclasses.replace(old, refresh_at=utcnow() + timedelta(seconds=30)))
    new = chat.get_session(AppUser(4), "s").token
    assert new != old
    assert [t.value for t in provider.revoked] == [old.value]


def test_user_wide_revocation_drops_every_stored_token_of_the_uid() -> None:
    provider = UserRevokingProvider()
    chat = ChatAuth(provider, MemoryStore())
    chat.get_session(AppUser(5), "phone")
    laptop = chat.get_session(AppUser(5), "laptop").token
    chat.get_session(AppUser(6), "other-user")
    ended = chat.end_session(AppUser(5), "phone")
    assert len(ended) == 2
    assert len(provider.revoked) == 1  # one user-wide call
    assert provider.revoked[0] in ended
    assert chat.store.sessions(uid="user-5") == []
    assert len(chat.store.sessions(uid="user-6")) == 1
    # The laptop gets a fresh token next time instead of the dead one.
    assert chat.get_session(AppUser(5), "laptop").token != laptop


def test_end_all_sessions_and_unknown_session(chat: ChatAuth) -> None:
    chat.get_session(AppUser(7), "a")
    chat.get_session(AppUser(7), "b")
    assert chat.end_session(AppUser(7), "never-started") == []
    assert len(chat.end_all_sessions(AppUser(7))) == 2
    assert chat.store.sessions() == []


def test_no_token_outlives_token_ttl_even_if_the_provider_allows_it() -> None:
    chat = ChatAuth(CountingProvider(), MemoryStore(), token_ttl=900, refresh_margin=60)
    token = chat.get_session(ChatIdentity("user-8"), None).token
    assert token.refresh_at == token.issued_at + timedelta(seconds=900)


def test_from_settings_builds_a_working_service(tmp_path: object) -> None:
    chat = from_settings(
        {
            "PROVIDER": "jwt",
            "JWT_SECRET": "x" * 32,
            "STORE": f"sqlite:///{tmp_path}/t.db",
            "TOKEN_TTL": timedelta(minutes=10),
            "UID_PREFIX": "app-",
        }
    )
    session = chat.get_session(AppUser(9), "s")
    assert session.uid == "app-9"
    assert session.to_json()["provider"] == "jwt"
    chat.close()


class FailingSetStore(MemoryStore):
    """A store whose writes fail, as a Redis that died mid-request does."""

    def set(self, key: SessionKey, token: object) -> None:  # type: ignore[override]
        raise StoreUnavailableError("store down", provider="memory")


def test_a_token_the_store_cannot_keep_is_revoked_at_once() -> None:
    provider = TokenRevokingProvider()
    chat = ChatAuth(provider, FailingSetStore())
    with pytest.raises(StoreUnavailableError):
        chat.get_session(AppUser(10), "s")
    assert provider.issued == 1
    assert len(provider.revoked) == 1  # not left alive at the provider


async def test_async_token_the_store_cannot_keep_is_revoked_at_once() -> None:
    provider = TokenRevokingProvider()
    chat = ChatAuth(provider, FailingSetStore())
    with pytest.raises(StoreUnavailableError):
        await chat.aget_session(AppUser(11), "s")
    assert len(provider.revoked) == 1
    await chat.aclose()


def test_end_tokens_revokes_what_an_admin_took_out_of_the_store() -> None:
    provider = UserRevokingProvider()
    chat = ChatAuth(provider, MemoryStore())
    ended: list[tuple[str, int]] = []
    chat.on_session_ended.append(lambda identity, tokens: ended.append((identity.uid, len(tokens))))
    phone = chat.get_session(AppUser(12), "phone").token
    chat.get_session(AppUser(12), "laptop")
    taken = chat.store.pop(SessionKey(provider.name, "user-12", "phone"))
    assert taken == phone
    assert chat.end_tokens([phone]) == 0
    assert len(provider.revoked) == 1  # one user-wide call
    assert chat.store.sessions() == []  # the laptop's token went with it
    assert ended == [("user-12", 2)]
