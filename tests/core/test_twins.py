"""The sync and async forms of every service operation are one operation.

``ChatAuth`` writes each operation once, as a generator of effects (``chatauth.effects``),
and hands it to a sync or an async driver. Here every scenario runs twice on fresh, real
parts -- a SQLite store file, the CometChat emulator over loopback HTTP (its tokens never
expire, so a forgotten revocation shows), a manual clock -- once through the public sync
methods and once through their async twins. The two runs must agree on everything that can
be observed: what each call returned or raised, the effects the operations asked for, in
order (store calls by name, provider flows, locks, single-flight, journal writes), and what
is left at the provider, in the store and in the end journal.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from chatauth import ChatAuth, ChatIdentity, ChatSession, ChatToken, refresh
from chatauth.effects import Blocking, Effect, Locked, Op, ProviderCall, Shared, StoreCall
from chatauth.errors import ChatAuthError
from chatauth.http import RetryPolicy
from chatauth.journal import EndJournal
from chatauth.providers.cometchat import CometChatProvider
from chatauth.stores.sqlite import SQLiteStore
from chatauth.testing.clock import ManualClock
from chatauth.testing.cometchat import DEFAULT_API_KEY, CometChatEmulator
from tests.core.test_journal import database_held

Log = list[tuple[Any, ...]]


def recorded(op: Op[Any], log: Log) -> Op[Any]:
    """``op``, logging every effect it yields (nested operations included) and every
    exception an effect raised into it."""
    try:
        effect = next(op)
        while True:
            log.append(describe(effect, log))
            try:
                result = yield effect
            except Exception as exc:
                log.append(("raised", type(exc).__name__))
                effect = op.throw(exc)
            else:
                effect = op.send(result)
    except StopIteration as stop:
        return stop.value


def describe(effect: Effect, log: Log) -> tuple[Any, ...]:
    if isinstance(effect, StoreCall):
        return ("store", effect.method)
    if isinstance(effect, ProviderCall):
        return ("provider", effect.flow.__qualname__)
    if isinstance(effect, Blocking):
        return ("blocking", effect.func.__name__)
    if isinstance(effect, Locked):
        effect.op = recorded(effect.op, log)
        return ("locked", effect.local)
    if isinstance(effect, Shared):
        start = effect.start
        effect.start = lambda: recorded(start(), log)
        return ("shared",)
    raise AssertionError(effect)


class RecordingChatAuth(ChatAuth):
    """A ChatAuth whose drivers log the effects of every operation they run."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.effects: Log = []

    def _drive(self, op: Op[Any]) -> Any:
        self.effects.append(("op", op.__qualname__))
        return super()._drive(recorded(op, self.effects))

    async def _adrive(self, op: Op[Any]) -> Any:
        self.effects.append(("op", op.__qualname__))
        return await super()._adrive(recorded(op, self.effects))

    # The refresh endpoint's pair (chatauth.refresh), as methods the scenarios can call.
    def refresh_session(self, user: Any, app_session: str | None, rejected: str) -> Any:
        return refresh.refresh_session(self, user, app_session, rejected)

    async def arefresh_session(self, user: Any, app_session: str | None, rejected: str) -> Any:
        return await refresh.arefresh_session(self, user, app_session, rejected)


def shape(value: Any) -> Any:
    """A run-independent picture of a result: tokens by uid (their values differ per run)."""
    if isinstance(value, ChatSession):
        return ("session", value.identity.uid, shape(value.token), sorted(value.client))
    if isinstance(value, ChatToken):
        return ("token", value.provider, value.uid)
    if isinstance(value, list | tuple):
        return [shape(v) for v in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return (type(value).__name__, dataclasses.asdict(value))
    return value


@dataclasses.dataclass
class Env:
    """One run's parts; :attr:`call` calls a service method in this run's mode."""

    chat: RecordingChatAuth
    emulator: CometChatEmulator
    clock: ManualClock
    db: Path
    call: Callable[..., Any]
    outcomes: list[Any] = dataclasses.field(default_factory=list)

    def do(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """Call ``method`` (sync name), record its result or error, return the result."""
        try:
            result = self.call(method, *args, **kwargs)
        except ChatAuthError as exc:
            self.outcomes.append((method, "raised", type(exc).__name__, exc.code))
            return None
        self.outcomes.append((method, shape(result)))
        return result


ALICE, BOB = ChatIdentity("alice"), ChatIdentity("bob")


def issue_then_cached(env: Env) -> None:
    first = env.do("get_session", ALICE, "s1")
    again = env.do("get_session", ALICE, "s1")
    assert first.token == again.token


def refresh_revokes_the_replaced_token(env: Env) -> None:
    old = env.do("get_session", ALICE, "s1").token
    env.clock.advance(timedelta(minutes=56))  # past the 5-minute margin of the 1-hour ttl
    new = env.do("get_session", ALICE, "s1").token
    assert new != old and not env.emulator.is_token_alive(old.value)


def end_session(env: Env) -> None:
    env.do("get_session", ALICE, "s1")
    env.do("get_session", ALICE, "s2")
    env.do("end_session", ALICE, "s1")
    env.do("end_session", ALICE, "s1")  # nothing left to end


def provider_down_at_logout_then_revoke_pending(env: Env) -> None:
    token = env.do("get_session", ALICE, "s1").token
    env.emulator.faults.status(503, times=3, method="DELETE")
    env.do("end_session", ALICE, "s1")
    assert env.emulator.is_token_alive(token.value)  # queued, not yet revoked
    env.do("revoke_pending")


def provider_down_at_issue(env: Env) -> None:
    env.emulator.faults.status(503, times=3)
    env.do("get_session", ALICE, "s1")
    env.do("get_session", ALICE, "s1")


def end_all_sessions(env: Env) -> None:
    env.do("get_session", ALICE, "s1")
    env.do("get_session", ALICE, "s2")
    env.do("get_session", BOB, "s3")
    env.do("end_all_sessions", ALICE)


def end_tokens(env: Env) -> None:
    env.do("get_session", ALICE, "s1")
    env.do("get_session", BOB, "s2")
    taken = env.chat.store.pop_user("cometchat", "alice") + env.chat.store.pop_user(
        "cometchat", "bob"
    )
    env.emulator.faults.status(503, times=3, method="DELETE")  # the first revocation fails
    env.do("end_tokens", taken)
    env.do("revoke_pending")


def sweep_idle_sessions(env: Env) -> None:
    env.do("get_session", ALICE, "s1")
    env.clock.advance(timedelta(minutes=30))
    env.do("get_session", BOB, "s2")
    env.do("sweep", timedelta(minutes=20))  # alice's is idle, bob's is not
    env.clock.advance(timedelta(hours=2))
    env.do("sweep")  # bob's is past refresh_at now


def refresh_a_rejected_token(env: Env) -> None:
    old = env.do("get_session", ALICE, "s1").token
    new = env.do("refresh_session", ALICE, "s1", old.value).token  # replaced, old revoked
    assert new != old and not env.emulator.is_token_alive(old.value)
    again = env.do("refresh_session", ALICE, "s1", old.value).token  # already replaced
    assert again == new
    env.do("refresh_session", ALICE, "s1", "not-a-token-we-know")


def chat_user_follows_the_app_user(env: Env) -> None:
    env.do("get_session", ALICE, "s1")
    env.do("update_chat_user", ChatIdentity("alice", name="Alice A."))
    env.do("get_session", ALICE, "s2")
    env.do("end_session", ALICE, "s1")
    env.emulator.faults.status(503, times=3, method="DELETE")  # its first revocation: queued
    env.do("deactivate_chat_user", ALICE)  # ends s2 first
    env.emulator.faults.status(503, times=3, method="DELETE")  # the deactivation: queued
    env.do("deactivate_chat_user", ALICE)
    env.do("revoke_pending")  # finishes both
    env.do("erase_chat_user", BOB)  # never logged in: nothing to end, the user is deleted


def durable_logout_while_the_store_is_down(env: Env) -> None:
    env.do("get_session", ALICE, "s1")
    with database_held(env.db):
        env.do("end_session_durably", ALICE, "s1")  # journaled
        env.do("sweep")  # the store is still down: the entry stays
    env.do("sweep")  # finished


SCENARIOS = [
    issue_then_cached,
    refresh_revokes_the_replaced_token,
    end_session,
    provider_down_at_logout_then_revoke_pending,
    provider_down_at_issue,
    end_all_sessions,
    end_tokens,
    sweep_idle_sessions,
    refresh_a_rejected_token,
    chat_user_follows_the_app_user,
    durable_logout_while_the_store_is_down,
]


@contextlib.contextmanager
def parts(
    tmp_path: Path, serve_emulator: Callable[[CometChatEmulator], CometChatEmulator], mode: str
) -> Iterator[Env]:
    """Fresh parts for one run, and ``call`` in that run's mode (sync, or the async twins
    awaited on one event loop)."""
    emulator = serve_emulator(CometChatEmulator())
    clock = ManualClock()
    db = tmp_path / mode / "chat.db"
    db.parent.mkdir()
    provider = CometChatProvider(
        emulator.app_id, DEFAULT_API_KEY, region=emulator.region, base_url=emulator.base_url
    )
    chat = RecordingChatAuth(
        provider,
        SQLiteStore(db, timeout=0.2, clock=clock),  # gives up quickly on a locked file
        clock=clock,
        retry=RetryPolicy(attempts=3),
        journal=EndJournal(db.with_name("chat.db.ends")),
    )
    loop = asyncio.new_event_loop()

    def call(method: str, *args: Any, **kwargs: Any) -> Any:
        if mode == "sync":
            return getattr(chat, method)(*args, **kwargs)
        return loop.run_until_complete(getattr(chat, "a" + method)(*args, **kwargs))

    try:
        yield Env(chat, emulator, clock, db, call)
    finally:
        loop.run_until_complete(chat.aclose())
        loop.close()


def final_state(env: Env) -> dict[str, Any]:
    """What a run leaves behind: live tokens at the provider, stored tokens, queued
    revocations and journaled entries."""
    assert env.chat.journal is not None
    return {
        "alive": {uid: len(env.emulator.tokens_of(uid)) for uid in ("alice", "bob")},
        "stored": sorted(shape(t) for t in env.chat.store.sessions()),
        "pending": env.chat.store.count_pending(),
        "journaled": len(env.chat.journal),
    }


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.__name__)
def test_both_drivers_run_the_same_operation(
    scenario: Callable[[Env], None],
    tmp_path: Path,
    serve_emulator: Callable[[CometChatEmulator], CometChatEmulator],
) -> None:
    runs = {}
    for mode in ("sync", "async"):
        with parts(tmp_path, serve_emulator, mode) as env:
            scenario(env)
            runs[mode] = (env.outcomes, env.chat.effects, final_state(env))
    sync, async_ = runs["sync"], runs["async"]
    assert sync[0] == async_[0]  # what each call returned or raised
    assert sync[1] == async_[1]  # the effects, in order
    assert sync[2] == async_[2]  # what is left behind
    assert ("store", "get") in sync[1] and ("op", "ChatAuth._get_session") in sync[1]
