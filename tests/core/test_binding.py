"""The request path of the core (chatauth.binding) over a plain dict session, and the answers
of chatauth.responses: what every adapter does, tested once without a framework."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import AsyncIterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chatauth import ChatAuth, ChatIdentity
from chatauth.binding import SESSION_KEY, ChatBinding, finish_needed, kept_session, read_slot
from chatauth.bodies import ARequestBody, RequestBody
from chatauth.errors import InvalidUIDError, NotAuthenticatedError, StoreUnavailableError
from chatauth.journal import EndJournal
from chatauth.responses import NO_STORE, aendpoint_answer, endpoint_answer, token_answer
from chatauth.session import ChatSession
from chatauth.stores.memory import MemoryStore
from tests.core.providers import TokenRevokingProvider


class User:
    def __init__(self, name: str) -> None:
        self.pk = name


class DownStore(MemoryStore):
    """A memory store whose reads fail as an unreachable store's do."""

    def get(self, key: Any) -> Any:
        raise StoreUnavailableError("The store is down.", provider="memory", retry_after=1)


@pytest.fixture
def chat() -> ChatAuth:
    return ChatAuth(TokenRevokingProvider(), MemoryStore())


def revoked(chat: ChatAuth) -> list[str]:
    provider = chat.provider
    assert isinstance(provider, TokenRevokingProvider)
    return [t.uid for t in provider.revoked]


def test_the_login_response_gets_an_unbound_id_and_the_first_use_binds_it(chat: ChatAuth) -> None:
    session: dict[str, Any] = {"user": "alice"}  # what a login view leaves
    ChatBinding(chat, session).finish()
    sid, uid = read_slot(session) or ("", "")
    assert sid and uid is None
    # Two concurrent first requests carry the same unbound id: one chat session.
    first, second = ChatBinding(chat, dict(session)), ChatBinding(chat, dict(session))
    assert first.get(lambda: User("alice")).token == second.get(lambda: User("alice")).token
    assert read_slot(first.session) == (sid, "user-alice")


def test_an_unbound_id_alone_is_removed_and_an_empty_session_gets_none(chat: ChatAuth) -> None:
    empty: dict[str, Any] = {}
    ChatBinding(chat, empty).finish()
    assert empty == {}
    alone: dict[str, Any] = {SESSION_KEY: "abc"}
    ChatBinding(chat, alone).finish()
    assert alone == {}
    former: dict[str, Any] = {SESSION_KEY: {"sid": "abc", "uid": None}}
    ChatBinding(chat, former).finish()
    assert former == {}


def test_another_users_login_hands_the_session_over(chat: ChatAuth) -> None:
    session: dict[str, Any] = {"user": "alice"}
    alice = ChatBinding(chat, session).get(lambda: User("alice"))
    sid = read_slot(session)
    bobs = [ChatBinding(chat, dict(session)).get(lambda: User("bob")) for _ in range(2)]
    assert bobs[0].token == bobs[1].token  # derived id: concurrent requests agree
    assert bobs[0].token != alice.token
    assert revoked(chat) == ["user-alice"]  # ended once; the second request found it ended
    assert read_slot(session) == sid  # the copies were bound, not this dict


def test_end_works_after_the_app_cleared_its_session(chat: ChatAuth) -> None:
    session: dict[str, Any] = {"user": "alice"}
    ChatBinding(chat, session).get(lambda: User("alice"))
    binding = ChatBinding(chat, session)
    session.clear()
    assert [t.uid for t in binding.end()] == ["user-alice"]
    assert binding.end() == []


def test_a_cleared_session_ends_its_chat_session_when_the_response_starts(
    chat: ChatAuth,
) -> None:
    session: dict[str, Any] = {"user": "alice"}
    ChatBinding(chat, session).get(lambda: User("alice"))
    binding = ChatBinding(chat, session)
    session.clear()
    binding.finish()
    assert revoked(chat) == ["user-alice"]
    assert session == {}  # and no new id for a cleared session


def test_the_first_outcome_is_the_requests_answer_errors_included() -> None:
    chat = ChatAuth(TokenRevokingProvider(), DownStore())
    binding = ChatBinding(chat, {"user": "alice"})
    calls: list[str] = []

    def user() -> User:
        calls.append("user")
        return User("alice")

    for _ in range(2):
        with pytest.raises(StoreUnavailableError):
            binding.get(user)
    assert calls == ["user"]  # decided once: no second round of store calls


def test_anonymous_and_invalid_uids_are_named_errors(chat: ChatAuth) -> None:
    with pytest.raises(NotAuthenticatedError):
        ChatBinding(chat, {}).get(lambda: None)
    with pytest.raises(InvalidUIDError):
        ChatBinding(chat, {}).get(lambda: User("no spaces allowed"))


def test_a_connection_that_cannot_write_the_session_does_not_bind(chat: ChatAuth) -> None:
    with pytest.raises(NotAuthenticatedError):
        ChatBinding(chat, {"user": "alice"}, writable=False).get(lambda: User("alice"))


def test_without_a_session_there_is_one_chat_session_per_user(chat: ChatAuth) -> None:
    one = ChatBinding(chat, None).get(lambda: User("carol"))
    two = ChatBinding(chat, None).get(lambda: User("carol"))
    assert one.token == two.token
    assert [t.uid for t in ChatBinding(chat, None).end(lambda: User("carol"))] == ["user-carol"]


def test_the_flask_adapters_former_two_key_shape_is_still_read(chat: ChatAuth) -> None:
    session = {SESSION_KEY: "old-sid", "_chatauth_uid": "user-alice"}
    assert read_slot(session) == ("old-sid", "user-alice")
    ChatBinding(chat, session).get(lambda: User("alice"))
    assert session == {SESSION_KEY: "old-sid:user-alice"}


def test_the_former_dict_shape_is_still_read_and_replaced_by_the_short_one(
    chat: ChatAuth,
) -> None:
    session: dict[str, Any] = {SESSION_KEY: {"sid": "old-sid", "uid": "user-alice"}}
    assert read_slot(session) == ("old-sid", "user-alice")
    ChatBinding(chat, session).get(lambda: User("alice"))
    assert session == {SESSION_KEY: "old-sid:user-alice"}


def test_the_slot_is_one_short_string(chat: ChatAuth) -> None:
    session: dict[str, Any] = {"user": "alice"}
    binding = ChatBinding(chat, session)
    binding.finish()
    sid = session[SESSION_KEY]
    assert isinstance(sid, str) and len(sid) == 22 and ":" not in sid
    binding.get(lambda: User("alice"))
    assert session[SESSION_KEY] == f"{sid}:user-alice"
    assert read_slot(session) == (sid, "user-alice")


async def test_concurrent_awaits_in_one_request_share_one_decision(chat: ChatAuth) -> None:
    binding = ChatBinding(chat, {"user": "alice"})
    calls: list[str] = []

    async def user() -> User:
        calls.append("user")
        await asyncio.sleep(0)  # let the other await arrive while this one decides
        return User("alice")

    one, two = await asyncio.gather(binding.aget(user), binding.aget(user))
    assert one is two
    assert calls == ["user"]


async def test_three_awaits_share_one_decision_and_a_cancelled_one_hands_it_on(
    chat: ChatAuth,
) -> None:
    binding = ChatBinding(chat, {"user": "alice"})
    calls: list[str] = []
    release = asyncio.Event()

    async def user() -> User:
        calls.append("user")
        await release.wait()  # the first decider waits here until cancelled
        return User("alice")

    first = asyncio.ensure_future(binding.aget(user))
    await asyncio.sleep(0)
    assert calls == ["user"]
    waiters = [asyncio.ensure_future(binding.aget(user)) for _ in range(2)]
    await asyncio.sleep(0)
    assert calls == ["user"]  # the other two wait for the first's decision
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    await asyncio.sleep(0)
    assert calls == ["user", "user"]  # one waiter took the decision over, the other waits
    release.set()
    one, two = await asyncio.gather(*waiters)
    assert one is two and one.uid == "user-alice"
    assert calls == ["user", "user"]


async def test_the_memory_store_reads_on_the_event_loop(chat: ChatAuth) -> None:
    await chat.aget_session(ChatIdentity("user-alice"), "s")
    seen: list[threading.Thread] = []
    store = chat.store
    original = store.get

    def get(key: Any) -> Any:
        seen.append(threading.current_thread())
        return original(key)

    store.get = get  # type: ignore[method-assign]
    await chat.aget_session(ChatIdentity("user-alice"), "s")
    assert seen == [threading.current_thread()]


# -- chatauth.responses ---------------------------------------------------------------------
def test_token_answers_carry_one_header_set_and_5xx_are_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    chat = ChatAuth(TokenRevokingProvider(), DownStore())
    ok = token_answer(
        lambda: ChatBinding(ChatAuth(TokenRevokingProvider()), None).get(lambda: User("alice"))
    )
    assert ok[0] == 200 and ok[2] == NO_STORE
    with caplog.at_level(logging.WARNING, logger="chatauth"):
        down = token_answer(lambda: ChatBinding(chat, None).get(lambda: User("alice")))
    assert down == (
        503,
        {"error": {"code": "ERROR_STORE_UNAVAILABLE", "message": "The store is down."}},
        {**NO_STORE, "Retry-After": "1"},
    )
    assert "chatauth answered 503 ERROR_STORE_UNAVAILABLE: The store is down." in caplog.text
    unauthenticated = token_answer(lambda: ChatBinding(chat, None).get(lambda: None))
    assert unauthenticated[0] == 401
    assert set(unauthenticated[1]["error"]) == {"code", "message"}


async def _no_chunks() -> AsyncIterator[bytes]:
    for chunk in ():
        yield chunk


async def test_providers_without_endpoints_answer_404_and_bad_bodies_never_reach_one(
    chat: ChatAuth,
) -> None:
    for answer in (
        endpoint_answer(chat, "chatkitty/verify", "POST", RequestBody.of(b"{}")),
        await aendpoint_answer(chat, "anything", "GET", ARequestBody(None, None, _no_chunks())),
    ):
        assert answer[0] == 404
        assert answer[1]["error"]["code"] == "ERROR_NOT_FOUND"
        assert answer[1]["error"]["message"]
        assert answer[2] == NO_STORE
    json.dumps(answer[1])  # a JSON body


class PopDownStore(MemoryStore):
    """A memory store that serves reads but takes no end: its issue lock fails as an
    unreachable store's does, while ``down`` is set."""

    down = False

    def _try_lock(self, key: Any, owner: str, ttl: float) -> bool:
        if self.down:
            raise StoreUnavailableError("The store is down.", provider="memory", retry_after=1)
        return super()._try_lock(key, owner, ttl)


def test_logout_with_the_store_down_and_no_journal_is_logged_not_raised(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = PopDownStore()
    chat = ChatAuth(TokenRevokingProvider(), store, session_idle=600)  # journal=None
    session: dict[str, Any] = {"user": "alice"}
    token = ChatBinding(chat, session).get(lambda: User("alice")).token
    store.down = True
    with caplog.at_level(logging.ERROR, logger="chatauth"):
        assert ChatBinding(chat, session).end() == []
        assert asyncio.run(ChatBinding(chat, {"user": "alice", **session}).aend()) == []
    assert read_slot(session) is None  # the logout went on: the id left the session
    assert "has no JOURNAL" in caplog.text
    assert token.value not in caplog.text
    assert [t.value for t in store.sessions()] == [token.value]  # left to the sweep
    store.down = False
    # Idle for twice SESSION_IDLE, well within the token's hour: swept and revoked.
    later = chat.clock.now() + chat.session_idle * 2
    assert chat.sweep(now=later).swept == 1
    assert revoked(chat) == ["user-alice"]
    assert store.sessions() == []


def test_logout_with_the_store_down_is_journaled_and_the_sweep_finishes_it(
    tmp_path: Any,
) -> None:
    store = PopDownStore()
    chat = ChatAuth(TokenRevokingProvider(), store, journal=EndJournal(tmp_path / "ends"))
    session: dict[str, Any] = {"user": "alice"}
    ChatBinding(chat, session).get(lambda: User("alice"))
    store.down = True
    assert asyncio.run(ChatBinding(chat, session).aend()) == []
    assert read_slot(session) is None
    assert revoked(chat) == []
    store.down = False
    assert chat.sweep().journaled == 1
    assert revoked(chat) == ["user-alice"]
    assert store.sessions() == []


# -- finish_needed: when a request that never used chat may skip finish() ------------------
class TrackedSession(dict[str, Any]):
    """A session that records changes, as Starlette's, Flask's and Django's do."""

    modified = False

    def __setitem__(self, key: str, value: Any) -> None:
        self.modified = True
        super().__setitem__(key, value)

    def pop(self, key: str, *default: Any) -> Any:
        self.modified = True
        return super().pop(key, *default)


BOUND = "s" * 22 + ":user-alice"
FORMER = {"sid": "s" * 22, "uid": "user-alice"}


@pytest.mark.parametrize(
    ("content", "modified", "needed"),
    [
        ({}, False, False),  # an anonymous, untouched session: nothing to make or end
        ({"user": "alice", SESSION_KEY: BOUND}, False, False),  # the common page view
        ({"user": "alice"}, False, True),  # an app session without an id gets one
        ({"user": "alice", SESSION_KEY: FORMER}, False, False),  # the former dict shape
        ({SESSION_KEY: "s" * 22}, False, True),  # an inert id alone
        ({SESSION_KEY: {"sid": "s" * 22, "uid": None}}, False, True),  # the same, former shape
        ({"user": "alice", SESSION_KEY: "s" * 22}, False, False),  # unbound among others
        ({"user": "alice", SESSION_KEY: 42}, False, True),  # no known shape: replaced
        ({"user": "alice", SESSION_KEY: BOUND}, True, True),  # changed: maybe cleared
    ],
)
def test_finish_is_skipped_only_where_it_would_do_nothing(
    chat: ChatAuth, content: dict[str, Any], modified: bool, needed: bool
) -> None:
    session = TrackedSession(content)
    session.modified = modified
    started = session.get(SESSION_KEY)
    assert finish_needed(session, started) is needed
    if not needed:  # what finish() would have done: nothing at all
        before = dict(session)
        ChatBinding(chat, session, started=started).finish()
        assert dict(session) == before and not session.modified


def test_finish_is_needed_for_a_session_that_keeps_no_modified_flag() -> None:
    assert finish_needed({"user": "alice", SESSION_KEY: BOUND}, BOUND) is True
    assert finish_needed(None, None) is False


def test_a_binding_made_late_watches_the_id_the_request_started_with(chat: ChatAuth) -> None:
    identity = ChatIdentity("user-alice")
    session = TrackedSession({"user": "alice"})
    first = ChatBinding(chat, session)
    first.get(lambda: identity)
    started = session.get(SESSION_KEY)
    assert chat.store.sessions(uid="user-alice")
    session.clear()  # the app cleared the session; the binding is made only now
    late = ChatBinding(chat, session, started=started)
    late.finish()
    assert chat.store.sessions(uid="user-alice") == []


def test_a_request_that_read_chat_from_an_unchanged_session_needs_no_finish(
    chat: ChatAuth,
) -> None:
    session = TrackedSession({"user": "alice"})
    ChatBinding(chat, session).get(lambda: User("alice"))
    assert session.modified  # the first use bound an id: that response needs its finish
    session.modified = False  # the next request, with the same session
    started = session.get(SESSION_KEY)
    binding = ChatBinding(chat, session, started=started)
    assert binding.get(lambda: User("alice")).uid == "user-alice"
    assert finish_needed(session, started) is False
    before = dict(session)
    binding.finish()  # what it would have done: nothing
    assert dict(session) == before and not session.modified


class CountingReads(MemoryStore):
    """A memory store that counts its reads."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    def get(self, key: Any) -> Any:
        self.reads += 1
        return super().get(key)


def test_kept_session_answers_a_session_served_a_moment_ago_without_the_store() -> None:
    store = CountingReads()
    chat = ChatAuth(TokenRevokingProvider(), store)
    session: dict[str, Any] = {"user": "alice"}
    ChatBinding(chat, session).get(lambda: User("alice"))  # issued
    served = ChatBinding(chat, session).get(lambda: User("alice"))  # read, and kept
    reads = store.reads
    started = session[SESSION_KEY]
    assert kept_session(chat, session, User("alice"), started) is served
    assert store.reads == reads
    # A binding made later takes it as the request's chat session: get() answers it
    # without calling load_user, and finish() would end it if the session were cleared.
    binding = ChatBinding(chat, session, started=started, kept=served)
    assert binding.is_loaded
    assert binding.get(lambda: pytest.fail("decided already")) is served
    assert binding.watched == read_slot(session)


def test_kept_session_never_answers_for_another_user_or_nobody() -> None:
    chat = ChatAuth(TokenRevokingProvider(), MemoryStore())
    session: dict[str, Any] = {"user": "alice"}
    for _ in range(2):  # issued, then read and kept
        ChatBinding(chat, session).get(lambda: User("alice"))
    started = session[SESSION_KEY]
    assert kept_session(chat, session, User("alice"), started) is not None

    class Anonymous:
        is_authenticated = False

    for user in (User("bob"), None, Anonymous()):
        assert kept_session(chat, session, user, started) is None
    # Bob, decided by get(): the session is handed over, alice's token ended.
    bob = ChatBinding(chat, session, started=started)
    assert bob.get(lambda: User("bob")).uid == "user-bob"
    assert revoked(chat) == ["user-alice"]


def test_kept_session_leaves_what_is_not_kept_or_changed_to_get() -> None:
    chat = ChatAuth(TokenRevokingProvider(), MemoryStore(), local_cache=0)
    session: dict[str, Any] = {"user": "alice"}
    for _ in range(2):
        ChatBinding(chat, session).get(lambda: User("alice"))
    started = session[SESSION_KEY]
    assert kept_session(chat, session, User("alice"), started) is None  # LOCAL_CACHE=0
    assert ChatBinding(chat, session, started=started).get(lambda: User("alice")).uid == (
        "user-alice"
    )
    # An unbound id, and a refused UID, are decided by get() too (which raises the latter).
    fresh: dict[str, Any] = {"user": "carol"}
    ChatBinding(chat, fresh).finish()
    assert kept_session(chat, fresh, User("carol"), fresh[SESSION_KEY]) is None
    with pytest.raises(InvalidUIDError):
        ChatBinding(chat, {"user": "x"}).get(lambda: User("no spaces allowed"))
    assert kept_session(chat, {"user": "x"}, User("no spaces allowed"), None) is None


def test_kept_session_needs_the_id_the_request_started_with() -> None:
    chat = ChatAuth(TokenRevokingProvider(), MemoryStore())
    session: dict[str, Any] = {"user": "alice"}
    for _ in range(2):
        ChatBinding(chat, session).get(lambda: User("alice"))
    started = session[SESSION_KEY]
    assert kept_session(chat, session, User("alice"), started) is not None
    # Cleared during the request, or replaced by an equal value that is not the same one:
    # the binding decides (and finish() ends what was cleared).
    assert kept_session(chat, {}, User("alice"), started) is None
    copy = {**session, SESSION_KEY: "".join(started)}
    assert copy[SESSION_KEY] == started
    assert copy[SESSION_KEY] is not started
    assert kept_session(chat, copy, User("alice"), started) is None
    assert kept_session(chat, None, User("alice"), started) is None


def _kept_for(chat: ChatAuth, name: str) -> tuple[str, ChatSession]:
    """A session of ``name`` issued, read again (and so kept by the process): its slot value
    and the chat session."""
    session: dict[str, Any] = {"user": name}
    ChatBinding(chat, session).get(lambda: User(name))
    served = ChatBinding(chat, session).get(lambda: User(name))
    return session[SESSION_KEY], served


_KEPT_CHAT = ChatAuth(TokenRevokingProvider(), MemoryStore(), local_cache=3600)
_KEPT = {name: _kept_for(_KEPT_CHAT, name) for name in ("alice", "bob")}


@given(
    name=st.sampled_from(["alice", "bob", "carol", None]),
    started=st.one_of(
        st.sampled_from([slot for slot, _ in _KEPT.values()]),
        st.sampled_from(["alice", "bob"]).map(lambda n: _KEPT[n][0].split(":")[0] + ":user-x"),
        st.sampled_from(["alice", "bob"]).map(lambda n: _KEPT[n][0].split(":")[0]),
        st.text(max_size=40),
        st.none(),
        st.integers(),
        st.dictionaries(st.sampled_from(["sid", "uid"]), st.text(max_size=30)),
    ),
    now=st.sampled_from(["same", "copy", "other", "absent"]),
)
def test_kept_session_only_ever_answers_the_users_own_session_under_its_own_id(
    name: str | None, started: object, now: str
) -> None:
    session: dict[str, Any] = {"user": name}
    if now == "same":
        session[SESSION_KEY] = started
    elif now == "copy" and isinstance(started, str):
        session[SESSION_KEY] = "".join(list(started))  # equal, not the same object
    elif now == "other":
        session[SESSION_KEY] = _KEPT["bob"][0]
    user = User(name) if name is not None else None
    kept = kept_session(_KEPT_CHAT, session, user, started)
    if kept is None:
        return
    # Only the session kept for this very user, found under the id the request started with
    # and still holds.
    assert name in _KEPT
    slot, served = _KEPT[name]
    assert kept is served
    assert started is slot or started == slot
    assert session[SESSION_KEY] is started
