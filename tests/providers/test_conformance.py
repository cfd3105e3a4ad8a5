"""The one conformance suite every provider passes, sync and async (DESIGN §3).

Parametrised over every harness in tests/providers/harnesses: each provider is exercised
against its real server or emulator over loopback HTTP.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import timedelta

import pytest

from chatauth import (
    ChatAuth,
    ChatIdentity,
    ConfigurationError,
    InvalidUIDError,
    ProviderError,
    ProviderUnavailableError,
)
from chatauth.http import RetryPolicy
from chatauth.stores.memory import MemoryStore
from chatauth.tokens import SessionKey, utcnow
from tests.providers.conformance import ANSWER_DEADLINE, HANG_TIMEOUT, AnswerDeadlines, Harness

_open: list[ChatAuth] = []


def service(h: Harness, **kwargs: object) -> ChatAuth:
    """A service on ``h.provider``; its sync requests go through :class:`AnswerDeadlines`, so
    only a request a fault keeps unanswered can time out quickly."""
    kwargs.setdefault("token_ttl", 3600)
    kwargs.setdefault("timeout", ANSWER_DEADLINE)
    kwargs.setdefault("transport", AnswerDeadlines(h.faults))
    chat = ChatAuth(h.provider, MemoryStore(), **kwargs)  # type: ignore[arg-type]
    _open.append(chat)
    if h.attach is not None:
        h.attach(chat)
    return chat


@pytest.fixture(autouse=True)
def _close_services() -> Iterator[None]:
    yield
    while _open:
        _open.pop().close()


def test_issue_gives_a_working_token(harness: Harness) -> None:
    chat = service(harness)
    session = chat.get_session(ChatIdentity(harness.valid_uid, name="Conformance"), "s1")
    assert session.uid == harness.valid_uid
    assert session.token.provider == harness.provider.name
    assert session.token.value.strip() == session.token.value != ""
    assert session.token.refresh_at is not None
    assert harness.is_alive(session.token)
    body = session.to_json()
    assert body["token"] == session.token.value
    assert set(body) == {"provider", "uid", "token", "expires_at", "client"}


def test_token_is_reused_without_a_provider_call(harness: Harness) -> None:
    chat = service(harness)
    first = chat.get_session(ChatIdentity(harness.valid_uid), "s1")
    calls = harness.issue_calls()
    second = chat.get_session(ChatIdentity(harness.valid_uid), "s1")
    assert second.token == first.token
    assert harness.issue_calls() == calls


def test_two_app_sessions_get_two_tokens(harness: Harness) -> None:
    chat = service(harness)
    one = chat.get_session(ChatIdentity(harness.valid_uid), "s1")
    two = chat.get_session(ChatIdentity(harness.valid_uid), "s2")
    assert one.token.value != two.token.value
    assert harness.is_alive(two.token)
    # Where the provider keeps one token per user, the newer session's token replaced it.
    assert harness.is_alive(one.token) is not harness.one_token_per_user


def test_token_near_expiry_is_refreshed(harness: Harness) -> None:
    chat = service(harness, token_ttl=3600, refresh_margin=300)
    identity = ChatIdentity(harness.valid_uid)
    old = chat.get_session(identity, "s1").token
    # Age the stored token until it is inside the refresh margin (4 minutes left).
    key = SessionKey(harness.provider.name, harness.valid_uid, "s1")
    chat.store.set(key, dataclasses.replace(old, refresh_at=utcnow() + timedelta(minutes=4)))
    new = chat.get_session(identity, "s1").token
    assert new.value != old.value
    assert harness.is_alive(new)
    assert chat.store.get(key) == new
    if harness.provider.revocation == "token":
        # The replaced token is revoked, so tokens do not pile up at the provider.
        assert not harness.is_alive(old)


def test_end_session_kills_the_token(harness: Harness) -> None:
    chat = service(harness)
    token = chat.get_session(ChatIdentity(harness.valid_uid), "s1").token
    ended = chat.end_session(ChatIdentity(harness.valid_uid), "s1")
    assert ended == [token]
    assert chat.store.sessions(uid=harness.valid_uid) == []
    assert chat.store.count_pending() == 0
    if harness.provider.revocation != "none":
        assert not harness.is_alive(token)
    # A new request after logout gets a new token, never the ended one.
    again = chat.get_session(ChatIdentity(harness.valid_uid), "s1").token
    assert again.value != token.value


@pytest.mark.parametrize(
    ("uid", "code"),
    [
        ("with space", "ERROR_UID_WITH_SPACE"),
        ("", "ERROR_INVALID_UID"),
        ("x" * 300, "ERROR_INVALID_UID"),
    ],
)
def test_bad_uid_is_refused_before_any_call(harness: Harness, uid: str, code: str) -> None:
    chat = service(harness)
    calls = harness.issue_calls()
    with pytest.raises(InvalidUIDError) as info:
        chat.get_session(ChatIdentity(uid), "s1")
    assert info.value.code == code
    assert harness.issue_calls() == calls


def test_bad_secret_is_a_clear_error(harness: Harness) -> None:
    try:
        provider = harness.make_bad_provider()
    except ConfigurationError as exc:
        assert exc.code in {"ERROR_API_KEY_NOT_FOUND", "ERROR_CONFIG"}
        return
    chat = ChatAuth(provider, MemoryStore(), timeout=ANSWER_DEADLINE)  # type: ignore[arg-type]
    _open.append(chat)
    with pytest.raises((ProviderError, ConfigurationError)) as info:
        chat.get_session(ChatIdentity(harness.valid_uid), "s1")
    assert info.value.code
    if isinstance(info.value, ProviderError):
        assert 400 <= info.value.status < 500
    assert chat.store.sessions() == []


def fault_timeout(kind: str) -> float:
    """The service's per-phase timeout for a fault test: short only where the fault is a
    silent server (see ``HANG_TIMEOUT``); a status or a reset is answered at once, and must
    never be mistaken for a timeout because the machine is slow."""
    return HANG_TIMEOUT if kind == "timeout" else ANSWER_DEADLINE


FAULTS = [
    ("status_429", lambda f, n: f.status(429, retry_after=2, times=n)),
    ("status_500", lambda f, n: f.status(500, times=n)),
    ("status_503", lambda f, n: f.status(503, times=n)),
    ("timeout", lambda f, n: f.timeout(times=n)),
    ("reset", lambda f, n: f.reset(times=n)),
]


@pytest.mark.parametrize(("kind", "inject"), FAULTS, ids=[k for k, _ in FAULTS])
def test_lasting_fault_gives_provider_unavailable(http_harness: Harness, kind: str, inject) -> None:  # type: ignore[no-untyped-def]
    harness = http_harness
    chat = service(harness, timeout=fault_timeout(kind), retry=RetryPolicy(attempts=3))
    inject(harness.faults, 50)
    with pytest.raises(ProviderUnavailableError) as info:
        chat.get_session(ChatIdentity(harness.valid_uid), "s1")
    assert info.value.retry_after >= 1
    if kind == "status_429":
        assert info.value.retry_after == 2
    harness.faults.clear()
    # The app keeps serving: the next request after the outage works.
    assert harness.is_alive(chat.get_session(ChatIdentity(harness.valid_uid), "s1").token)


@pytest.mark.parametrize(("kind", "inject"), FAULTS, ids=[k for k, _ in FAULTS])
def test_passing_fault_is_retried(http_harness: Harness, kind: str, inject) -> None:  # type: ignore[no-untyped-def]
    harness = http_harness
    chat = service(harness, timeout=fault_timeout(kind), retry=RetryPolicy(attempts=3))
    inject(harness.faults, 1)
    session = chat.get_session(ChatIdentity(harness.valid_uid), "s1")
    assert harness.is_alive(session.token)


def test_logout_during_outage_is_queued_then_revoked(http_harness: Harness) -> None:
    harness = http_harness
    chat = service(harness)
    token = chat.get_session(ChatIdentity(harness.valid_uid), "s1").token
    harness.faults.status(503, times=50)
    chat.end_session(ChatIdentity(harness.valid_uid), "s1")
    harness.faults.clear()
    if harness.provider.revocation == "none":
        assert chat.store.count_pending() == 0
        return
    assert chat.store.count_pending() == 1
    assert harness.is_alive(token)  # not revoked yet: the provider was down
    report = chat.revoke_pending()
    assert (report.revoked, report.failed, report.remaining) == (1, 0, 0)
    assert not harness.is_alive(token)


async def test_async_issue_reuse_and_end(harness: Harness) -> None:
    chat = service(harness)
    first = await chat.aget_session(ChatIdentity(harness.valid_uid), "a1")
    again = await chat.aget_session(ChatIdentity(harness.valid_uid), "a1")
    assert again.token == first.token
    assert harness.is_alive(first.token)
    ended = await chat.aend_session(ChatIdentity(harness.valid_uid), "a1")
    assert ended == [first.token]
    if harness.provider.revocation != "none":
        assert not harness.is_alive(first.token)
    await chat.aclose()


async def test_async_lasting_fault(http_harness: Harness) -> None:
    harness = http_harness
    chat = service(harness)
    harness.faults.status(502, times=50)
    with pytest.raises(ProviderUnavailableError):
        await chat.aget_session(ChatIdentity(harness.valid_uid), "a1")
    harness.faults.clear()
    await chat.aclose()


def test_ttl_reaches_the_token(harness: Harness) -> None:
    chat = service(harness, token_ttl=timedelta(minutes=20), refresh_margin=60)
    token = chat.get_session(ChatIdentity(harness.valid_uid), "s1").token
    assert token.refresh_at == token.issued_at + timedelta(minutes=20)
    if token.expires_at is not None:
        # The provider's own expiry honours the ttl within its units' rounding.
        lifetime = (token.expires_at - token.issued_at).total_seconds()
        assert 20 * 60 - 2 <= lifetime <= 20 * 60 + 2
