"""The sweep: no chat token outlives its app session at the provider (issue 13, item 1).

Against the CometChat emulator, whose auth tokens never expire: a session whose app session
was abandoned (the browser never comes back) is ended by ``ChatAuth.sweep`` once it has not
been served for ``session_idle``, and so is a token past its ``refresh_at``; the token is then
dead at CometChat. Time is a :class:`~chatauth.testing.clock.ManualClock`; ``chatauth sweep``
runs as a real subprocess on the same SQLite file.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from chatauth import ChatAuth, ChatIdentity, from_settings
from chatauth.cli import EXIT_OK, EXIT_PENDING
from chatauth.providers.cometchat import CometChatProvider
from chatauth.providers.jwt import JWTSigner
from chatauth.providers.matrix import MatrixProvider
from chatauth.service import DEFAULT_SESSION_IDLE
from chatauth.stores.memory import MemoryStore
from chatauth.stores.sqlite import SQLiteStore
from chatauth.testing.clock import ManualClock
from chatauth.testing.cometchat import DEFAULT_API_KEY, CometChatEmulator
from chatauth.tokens import SessionKey
from tests.servers.deadlines import REQUEST_DEADLINE
from tests.servers.synapse import SynapseServer

ROOT = Path(__file__).parents[2]
DAY = 24 * 3600.0


class CountingStore(MemoryStore):
    """A MemoryStore that counts ``touch`` calls (how often the cached path writes)."""

    def __init__(self, clock: ManualClock) -> None:
        super().__init__(clock=clock)
        self.touches = 0

    def touch(self, key: SessionKey, served_at: object) -> None:  # type: ignore[override]
        self.touches += 1
        super().touch(key, served_at)  # type: ignore[arg-type]


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


def service(
    emulator: CometChatEmulator, store: MemoryStore | SQLiteStore, clock: ManualClock
) -> ChatAuth:
    provider = CometChatProvider(
        emulator.app_id, DEFAULT_API_KEY, region=emulator.region, base_url=emulator.base_url
    )
    # Tokens re-issued after 30 days, sessions idle after 14: each rule can be seen alone.
    return ChatAuth(provider, store, clock=clock, token_ttl=30 * DAY, session_idle=14 * DAY)


def test_abandoned_sessions_are_swept_and_their_tokens_die(
    cometchat_emulator: CometChatEmulator, clock: ManualClock
) -> None:
    chat = service(cometchat_emulator, MemoryStore(clock=clock), clock)
    alice = chat.get_session(ChatIdentity("alice"), "alice-browser").token
    bob = chat.get_session(ChatIdentity("bob"), "bob-browser").token  # then the cookie is lost
    clock.advance(10 * DAY)
    chat.get_session(ChatIdentity("alice"), "alice-browser")  # alice keeps using the app
    clock.advance(5 * DAY)  # bob: 15 days unserved; alice: 5

    report = chat.sweep()
    assert (report.swept, report.revoked, report.queued) == (1, 1, 0)
    assert not cometchat_emulator.is_token_alive(bob.value)
    assert cometchat_emulator.is_token_alive(alice.value)
    assert chat.store.sessions() == [alice]
    # bob comes back after all: a fresh token, as after any ended session.
    assert chat.get_session(ChatIdentity("bob"), "bob-browser").token != bob
    chat.close()


def test_tokens_past_refresh_are_swept_even_if_recently_served(
    cometchat_emulator: CometChatEmulator, clock: ManualClock
) -> None:
    chat = service(cometchat_emulator, MemoryStore(clock=clock), clock)
    token = chat.get_session(ChatIdentity("carol"), "s").token
    for _ in range(31):  # served every day, but never re-issued (the page stays open)
        clock.advance(DAY)
        chat.store.touch(SessionKey("cometchat", "carol", "s"), clock.now())
    report = chat.sweep()
    assert (report.swept, report.revoked) == (1, 1)
    assert not cometchat_emulator.is_token_alive(token.value)
    chat.close()


def test_a_failed_revocation_is_queued_then_finished(
    cometchat_emulator: CometChatEmulator, clock: ManualClock
) -> None:
    chat = service(cometchat_emulator, MemoryStore(clock=clock), clock)
    token = chat.get_session(ChatIdentity("dave"), "s").token
    clock.advance(15 * DAY)
    cometchat_emulator.faults.status(503, times=3, method="DELETE")
    report = chat.sweep()
    assert (report.swept, report.revoked, report.queued) == (1, 0, 1)
    assert cometchat_emulator.is_token_alive(token.value)
    assert chat.revoke_pending().remaining == 0
    assert not cometchat_emulator.is_token_alive(token.value)
    chat.close()


async def test_async_sweep(cometchat_emulator: CometChatEmulator, clock: ManualClock) -> None:
    chat = service(cometchat_emulator, MemoryStore(clock=clock), clock)
    token = (await chat.aget_session(ChatIdentity("erin"), "s")).token
    clock.advance(20 * DAY)
    report = await chat.asweep()
    assert (report.swept, report.revoked) == (1, 1)
    assert not cometchat_emulator.is_token_alive(token.value)
    await chat.aclose()


def test_cached_hits_record_served_at_most_once_per_granularity(
    cometchat_emulator: CometChatEmulator, clock: ManualClock
) -> None:
    store = CountingStore(clock)
    chat = service(cometchat_emulator, store, clock)
    assert chat.served_granularity == timedelta(hours=1)
    for _ in range(50):  # 50 hits in 49 minutes: the time stored with the token is recent
        chat.get_session(ChatIdentity("frank"), "s")
        clock.advance(60)
    assert store.touches == 0
    clock.advance(11 * 60)
    chat.get_session(ChatIdentity("frank"), "s")
    chat.get_session(ChatIdentity("frank"), "s")
    assert store.touches == 1
    stored = store.get(SessionKey("cometchat", "frank", "s"))
    assert stored is not None and stored.served_at == clock.now()
    chat.close()


def test_providers_without_revocation_are_swept_without_calls(clock: ManualClock) -> None:
    settings = {"PROVIDER": "jwt", "JWT_SECRET": "s" * 32, "STORE": MemoryStore(clock=clock)}
    chat = from_settings(settings, clock=clock)
    chat.get_session(ChatIdentity("gina"), "s")
    clock.advance(DEFAULT_SESSION_IDLE + 1)  # also past refresh (1 h)
    assert chat.sweep().swept == 1
    assert chat.store.sessions() == []


def test_session_idle_setting_and_default() -> None:
    assert DEFAULT_SESSION_IDLE == 1_209_600  # Django's SESSION_COOKIE_AGE, Starlette's max_age
    chat = from_settings({"PROVIDER": "jwt", "JWT_SECRET": "s" * 32, "STORE": "memory://"})
    assert chat.session_idle == timedelta(days=14)
    chat = from_settings(
        {"PROVIDER": "jwt", "JWT_SECRET": "s" * 32, "STORE": "memory://", "SESSION_IDLE": 3600}
    )
    assert chat.session_idle == timedelta(hours=1)
    assert chat.served_granularity == timedelta(minutes=2, seconds=30)


# -- the command ---------------------------------------------------------------------------
@pytest.fixture
def app_env(
    serve_emulator: Callable[[CometChatEmulator], CometChatEmulator], tmp_path: Path
) -> tuple[dict[str, str], CometChatEmulator]:
    emulator = serve_emulator(CometChatEmulator())
    return (
        {
            "CHATAUTH_PROVIDER": "cometchat",
            "CHATAUTH_COMETCHAT_APP_ID": emulator.app_id,
            "CHATAUTH_COMETCHAT_API_KEY": DEFAULT_API_KEY,
            "CHATAUTH_COMETCHAT_BASE_URL": emulator.base_url,
            "CHATAUTH_STORE": f"sqlite:///{tmp_path / 'chat.db'}",
            "CHATAUTH_RETRY_ATTEMPTS": "1",
        },
        emulator,
    )


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CHATAUTH_")}
    return subprocess.run(
        [sys.executable, "-m", "chatauth.cli", *args],
        cwd=ROOT,
        env={**clean, "PYTHONPATH": str(ROOT), **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_chatauth_sweep_command(
    app_env: tuple[dict[str, str], CometChatEmulator], tmp_path: Path
) -> None:
    env, emulator = app_env
    # The app served two sessions 20 and 2 days ago (its clock set back; the command runs
    # on the real clock), one more 20 days ago whose revocation will fail.
    past = ManualClock(start=time.time() - 20 * DAY)
    store = SQLiteStore(tmp_path / "chat.db", clock=past)
    chat = service(emulator, store, past)
    old = chat.get_session(ChatIdentity("old"), "s").token
    stuck = chat.get_session(ChatIdentity("stuck"), "s").token
    past.advance(18 * DAY)
    recent = chat.get_session(ChatIdentity("recent"), "s").token
    chat.close()

    # CometChat refuses stuck's revocation twice: in the sweep and in its revoke-pending.
    emulator.faults.status(503, times=2, method="DELETE", path="/v3/users/stuck/")
    first = run(env, "sweep")
    assert first.returncode == EXIT_PENDING, first.stderr
    assert "sweep: swept=2 revoked=1 queued=1" in first.stdout
    assert "revoke-pending: revoked=0 failed=1 remaining=1" in first.stdout
    assert emulator.is_token_alive(stuck.value)  # queued, not forgotten
    second = run(env, "sweep", "--idle", str(DAY))  # now recent's 2 days count as idle too
    assert second.returncode == EXIT_OK, second.stderr
    assert "sweep: swept=1 revoked=1 queued=0" in second.stdout
    assert "revoke-pending: revoked=1 failed=0 remaining=0" in second.stdout
    for token in (old, stuck, recent):
        assert not emulator.is_token_alive(token.value)
        assert token.value not in first.stdout + first.stderr + second.stdout + second.stderr


def test_matrix_jwt_token_of_an_abandoned_session_is_logged_out(
    synapse: SynapseServer, clock: ManualClock
) -> None:
    # Matrix JWT-login tokens never expire at Synapse either: only the sweep ends them.
    provider = MatrixProvider(
        synapse.base_url,
        server_name=synapse.server_name,
        mode="jwt",
        signer=JWTSigner(synapse.jwt_algorithm, secret=synapse.jwt_secret),
    )
    chat = ChatAuth(provider, MemoryStore(clock=clock), clock=clock, timeout=REQUEST_DEADLINE)
    token = chat.get_session(ChatIdentity(f"swept-{secrets.token_hex(3)}"), "s").token
    assert synapse.whoami(token.value).status_code == 200
    clock.advance(DEFAULT_SESSION_IDLE + 1)
    assert chat.sweep().revoked == 1
    assert synapse.whoami(token.value).status_code == 401
    chat.close()
