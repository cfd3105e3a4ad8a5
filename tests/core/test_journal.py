"""The end journal: a logout whose store is down still ends the chat session, later.

``ChatAuth.end_session_durably`` journals the end when the store cannot be reached, and the
sweep finishes it once the store answers. The outage here is real: another connection holds
SQLite's write lock for longer than the store's ``timeout``, then lets go (the data survives,
as with a database that was briefly unreachable). The provider is the CometChat emulator,
whose tokens never expire.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from chatauth import ChatAuth, ChatIdentity, StoreUnavailableError, from_settings
from chatauth.journal import EndJournal
from chatauth.providers.cometchat import CometChatProvider
from chatauth.stores.sqlite import SQLiteStore
from chatauth.testing.cometchat import DEFAULT_API_KEY, CometChatEmulator
from chatauth.tokens import SessionKey


@contextlib.contextmanager
def database_held(path: Path) -> Iterator[None]:
    """Another process's long write transaction: the store's writes find it locked."""
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as other:
        other.execute("BEGIN EXCLUSIVE")
        try:
            yield
        finally:
            other.execute("ROLLBACK")


def service(emulator: CometChatEmulator, tmp_path: Path, journal: EndJournal | None) -> ChatAuth:
    provider = CometChatProvider(
        emulator.app_id, DEFAULT_API_KEY, region=emulator.region, base_url=emulator.base_url
    )
    # A store that gives up after 0.2 s of a locked database, so the outage is quick.
    store = SQLiteStore(tmp_path / "chat.db", timeout=0.2)
    return ChatAuth(provider, store, journal=journal)


def test_logout_with_the_store_down_is_journaled_then_finished_by_the_sweep(
    cometchat_emulator: CometChatEmulator, tmp_path: Path
) -> None:
    journal = EndJournal(tmp_path / "chat.db.ends")
    chat = service(cometchat_emulator, tmp_path, journal)
    alice = ChatIdentity("alice")
    token = chat.get_session(alice, "app-session-secret").token

    with database_held(tmp_path / "chat.db"):
        assert chat.end_session_durably(alice, "app-session-secret") == []  # no error
    assert len(journal) == 1
    assert cometchat_emulator.is_token_alive(token.value)  # not yet: the store was down
    text = journal.path.read_text()
    assert "app-session-secret" not in text and token.value not in text
    assert stat.S_IMODE(journal.path.stat().st_mode) == 0o600

    report = chat.sweep()  # the store answers again
    assert report.journaled == 1
    assert len(journal) == 0
    assert not cometchat_emulator.is_token_alive(token.value)
    assert chat.store.get(SessionKey("cometchat", "alice", "app-session-secret")) is None
    chat.close()


async def test_async_twin(cometchat_emulator: CometChatEmulator, tmp_path: Path) -> None:
    journal = EndJournal(tmp_path / "ends")
    chat = service(cometchat_emulator, tmp_path, journal)
    token = (await chat.aget_session(ChatIdentity("bob"), "s")).token
    with database_held(tmp_path / "chat.db"):
        assert await chat.aend_session_durably(ChatIdentity("bob"), "s") == []
    assert (await chat.asweep()).journaled == 1
    assert not cometchat_emulator.is_token_alive(token.value)
    await chat.aclose()


def test_replay_keeps_the_journal_while_the_store_is_still_down(
    cometchat_emulator: CometChatEmulator, tmp_path: Path
) -> None:
    journal = EndJournal(tmp_path / "ends")
    chat = service(cometchat_emulator, tmp_path, journal)
    chat.get_session(ChatIdentity("carol"), "s")
    with database_held(tmp_path / "chat.db"):
        chat.end_session_durably(ChatIdentity("carol"), "s")
        with pytest.raises(StoreUnavailableError):
            chat.sweep()
        assert len(journal) == 1
    assert chat.replay_journal() == (1, 0)
    chat.close()


def test_without_a_journal_the_store_error_is_raised(
    cometchat_emulator: CometChatEmulator, tmp_path: Path
) -> None:
    chat = service(cometchat_emulator, tmp_path, None)
    chat.get_session(ChatIdentity("dave"), "s")
    with database_held(tmp_path / "chat.db"), pytest.raises(StoreUnavailableError):
        chat.end_session_durably(ChatIdentity("dave"), "s")
    chat.close()


def test_concurrent_writers_and_a_replayer_lose_nothing(tmp_path: Path) -> None:
    journal = EndJournal(tmp_path / "ends")
    seen: list[str] = []
    seen_guard = threading.Lock()
    writers_done = threading.Event()

    def end(key: SessionKey) -> bool:
        with seen_guard:
            seen.append(key.digest)
        return True

    def write(worker: int) -> None:
        # Each thread opens the file itself, as a worker process would.
        for n in range(50):
            EndJournal(journal.path).record(SessionKey("p", f"u{worker}", f"s{n}"))

    def replay() -> None:
        while not writers_done.wait(0.001):  # replay over and over while they write
            EndJournal(journal.path).replay(end)

    writers = [threading.Thread(target=write, args=(w,)) for w in range(4)]
    replayer = threading.Thread(target=replay)
    replayer.start()
    for thread in writers:
        thread.start()
    for thread in writers:
        thread.join()
    writers_done.set()
    replayer.join()
    journal.replay(end)
    expected = {SessionKey("p", f"u{w}", f"s{n}").digest for w in range(4) for n in range(50)}
    assert sorted(seen) == sorted(expected)  # each end replayed exactly once
    assert len(journal) == 0


def test_a_torn_line_and_an_interrupted_replay(tmp_path: Path) -> None:
    journal = EndJournal(tmp_path / "ends")
    journal.record(SessionKey("p", "u1", "s1"))
    # A crash mid-replay left the copy; a crash mid-write left half a line in the journal.
    journal.path.rename(journal.replaying)
    journal.record(SessionKey("p", "u2", "s2"))
    with journal.path.open("a") as handle:
        handle.write('{"provider": "p", "uid"')
    keys: list[SessionKey] = []
    assert journal.replay(lambda key: keys.append(key) is None) == (2, 0)
    assert [k.uid for k in keys] == ["u1", "u2"]
    assert keys[0].digest == SessionKey("p", "u1", "s1").digest
    assert json.dumps([k.app_session for k in keys]) == "[null, null]"


def test_failed_ends_stay_for_the_next_replay(tmp_path: Path) -> None:
    journal = EndJournal(tmp_path / "ends")
    for n in range(3):
        journal.record(SessionKey("p", f"u{n}", "s"))
    assert journal.replay(lambda key: key.uid != "u1") == (2, 1)
    assert journal.replay(lambda key: True) == (1, 0)


def test_store_timeout_setting_bounds_a_logouts_wait_for_a_locked_store(
    cometchat_emulator: CometChatEmulator, tmp_path: Path
) -> None:
    """``STORE_TIMEOUT`` (settings, as the samples read it from ``CHATAUTH_STORE_TIMEOUT``)
    reaches the SQLite store: the logout gives up on the held lock after it and journals."""
    chat = from_settings(
        {
            "PROVIDER": "cometchat",
            "COMETCHAT_APP_ID": cometchat_emulator.app_id,
            "COMETCHAT_API_KEY": DEFAULT_API_KEY,
            "COMETCHAT_BASE_URL": cometchat_emulator.base_url,
            "STORE": f"sqlite:///{tmp_path / 'chat.db'}",
            "STORE_TIMEOUT": "0.2",
        }
    )
    try:
        assert isinstance(chat.store, SQLiteStore)
        assert chat.store.timeout == 0.2
        token = chat.get_session(ChatIdentity("erin"), "s").token
        with database_held(tmp_path / "chat.db"):
            assert chat.end_session_durably(ChatIdentity("erin"), "s") == []
        assert chat.journal is not None and len(chat.journal) == 1
        assert chat.sweep().journaled == 1
        assert not cometchat_emulator.is_token_alive(token.value)
    finally:
        chat.close()
