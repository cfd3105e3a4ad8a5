"""A token the store failed to save, whose revocation failed too, is kept durably.

The path: the provider mints a token, then the store fails to save it (nobody will ever be
handed it), so the service revokes it at once; when that revocation fails as well, the
token must not be forgotten alive at the provider. It is queued for ``revoke-pending`` when
the store answers again by then, else written to the end journal for the sweep.

Real parts: a SQLite store file whose write lock another connection really holds (the store
gives up after 0.2 s), the CometChat emulator over loopback HTTP (its tokens never expire:
a forgotten one would live forever) with its fault queue, and both drivers.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from pathlib import Path

import pytest

from chatauth import ChatAuth, ChatIdentity, StoreUnavailableError
from chatauth.http import RetryPolicy
from chatauth.journal import EndJournal
from chatauth.providers.cometchat import CometChatProvider
from chatauth.stores.sqlite import SQLiteStore
from chatauth.testing.cometchat import DEFAULT_API_KEY, CometChatEmulator
from tests.core.test_journal import database_held

ALICE = ChatIdentity("alice")
MINT = "/v3/users/alice/auth_tokens"


def service(emulator: CometChatEmulator, db: Path, journal: EndJournal | None) -> ChatAuth:
    provider = CometChatProvider(
        emulator.app_id, DEFAULT_API_KEY, region=emulator.region, base_url=emulator.base_url
    )
    emulator.create_user("alice")  # so the token is minted by its own request (MINT)
    return ChatAuth(
        provider,
        SQLiteStore(db, timeout=0.2),
        journal=journal,
        timeout=5.0,
        retry=RetryPolicy(attempts=3),
    )


def in_thread(chat: ChatAuth, mode: str) -> tuple[threading.Thread, list[BaseException]]:
    """``get_session(ALICE)`` in a thread (sync driver, or async on the thread's own loop);
    the errors it raised end up in the returned list."""
    errors: list[BaseException] = []

    async def aget() -> None:
        try:
            await chat.aget_session(ALICE, "s")
        finally:  # this loop's client (ChatAuth keeps one per loop) goes with the loop
            client = chat._async_clients.pop(asyncio.get_running_loop(), None)
            if client is not None:
                await client.aclose()

    def run() -> None:
        try:
            if mode == "sync":
                chat.get_session(ALICE, "s")
            else:
                asyncio.run(aget())
        except BaseException as exc:
            errors.append(exc)

    return threading.Thread(target=run), errors


def minted(emulator: CometChatEmulator) -> str:
    (token,) = emulator.tokens_of("alice")
    return token


MODES = ["sync", "async"]


@pytest.mark.parametrize("mode", MODES)
def test_store_and_revocation_down_the_token_is_journaled_then_swept(
    mode: str, cometchat_emulator: CometChatEmulator, tmp_path: Path
) -> None:
    db, journal = tmp_path / "chat.db", EndJournal(tmp_path / "chat.db.ends")
    chat = service(cometchat_emulator, db, journal)
    minting = cometchat_emulator.faults.hold(path=MINT, method="POST")
    cometchat_emulator.faults.status(503, times=3, method="DELETE")  # every revoke attempt
    thread, errors = in_thread(chat, mode)
    try:
        thread.start()
        assert minting.wait_entered(30)  # the issue lock is taken, the token being minted
        with database_held(db):  # the store goes down before the token can be saved
            minting.release()
            thread.join(30)
    finally:
        minting.release()
    assert not thread.is_alive()
    assert [type(e) for e in errors] == [StoreUnavailableError]
    token = minted(cometchat_emulator)
    assert cometchat_emulator.calls.count_of("DELETE") == 3  # revoked at once: it failed
    assert cometchat_emulator.is_token_alive(token)
    assert len(journal) == 1 and chat.store.count_pending() == 0

    report = chat.sweep()  # the store answers again, and so does the provider
    assert report.journaled == 1
    assert not cometchat_emulator.is_token_alive(token)
    assert len(journal) == 0 and chat.store.count_pending() == 0
    chat.close()


@pytest.mark.parametrize("mode", MODES)
def test_store_back_by_then_the_revocation_is_queued_for_revoke_pending(
    mode: str, cometchat_emulator: CometChatEmulator, tmp_path: Path
) -> None:
    db, journal = tmp_path / "chat.db", EndJournal(tmp_path / "chat.db.ends")
    chat = service(cometchat_emulator, db, journal)
    chat.retry = RetryPolicy(attempts=1)  # the one revocation attempt fails: no retry
    minting = cometchat_emulator.faults.hold(path=MINT, method="POST")
    # The revocation is held until the store is back, then refused: no timing involved.
    revoking = cometchat_emulator.faults.hold(method="DELETE", then_status=503)
    thread, errors = in_thread(chat, mode)
    try:
        thread.start()
        assert minting.wait_entered(30)
        with database_held(db):
            minting.release()
            # Saving failed, so the service is revoking the token: the emulator holds that
            # request while the store comes back, then refuses it.
            assert revoking.wait_entered(30)
        revoking.release()
        thread.join(30)
        assert not thread.is_alive()
        assert [type(e) for e in errors] == [StoreUnavailableError]
        token = minted(cometchat_emulator)
        assert cometchat_emulator.is_token_alive(token)
        assert chat.store.count_pending() == 1 and len(journal) == 0
    finally:
        minting.release()
        revoking.release()

    report = chat.revoke_pending()
    assert (report.revoked, report.remaining) == (1, 0)
    assert not cometchat_emulator.is_token_alive(token)
    chat.close()


def test_without_a_journal_a_token_nothing_could_keep_is_logged_as_an_error(
    cometchat_emulator: CometChatEmulator, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = tmp_path / "chat.db"
    chat = service(cometchat_emulator, db, None)
    minting = cometchat_emulator.faults.hold(path=MINT, method="POST")
    cometchat_emulator.faults.status(503, times=3, method="DELETE")
    thread, errors = in_thread(chat, "sync")
    try:
        thread.start()
        assert minting.wait_entered(30)
        with database_held(db), caplog.at_level(logging.ERROR, logger="chatauth"):
            minting.release()
            thread.join(30)
    finally:
        minting.release()
    assert [type(e) for e in errors] == [StoreUnavailableError]
    token = minted(cometchat_emulator)
    (record,) = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert "uid alice" in record.getMessage() and token not in record.getMessage()
    chat.close()
