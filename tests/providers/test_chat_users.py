"""The chat user follows the app user: every provider's update, deactivate and erase (or its
named refusal), sync and async, against its emulator or the real Synapse.

Each test uses a UID of its own: the Synapse is shared by the session, and a deactivated or
erased Matrix user cannot come back.
"""

from __future__ import annotations

import secrets

import pytest

from chatauth import ChatIdentity, UnsupportedOperationError
from chatauth.chat_users import OPERATIONS, ChatUserChange, is_queued_operation
from chatauth.providers.base import UserOperation
from tests.providers.conformance import Harness
from tests.providers.test_conformance import service

AVATAR = "https://example.org/avatars/new.png"


def fresh_uid() -> str:
    return f"cu-{secrets.token_hex(5)}"


def supports(harness: Harness, operation: UserOperation) -> bool:
    return operation in harness.provider.user_operations


def test_every_provider_declares_what_it_does(harness: Harness) -> None:
    assert set(harness.provider.user_operations) <= set(OPERATIONS)


def test_update_pushes_the_profile(harness: Harness) -> None:
    chat = service(harness)
    uid = fresh_uid()
    chat.get_session(ChatIdentity(uid, name="Old Name"), "s1")
    harness.connect(uid, "Old Name")
    identity = ChatIdentity(uid, name="New Name", avatar=AVATAR)
    if not supports(harness, "update"):
        with pytest.raises(UnsupportedOperationError) as info:
            chat.update_chat_user(identity)
        assert info.value.code == "ERROR_UNSUPPORTED_OPERATION"
        assert (info.value.provider, info.value.operation) == (harness.provider.name, "update")
        return
    change = chat.update_chat_user(identity)
    assert change == ChatUserChange("update", uid, done=True)
    user = harness.chat_user(uid)
    assert user is not None
    assert user["name"] == "New Name"
    if "avatar" in user:
        assert user["avatar"] == AVATAR
    # The session is untouched by an update.
    assert len(chat.store.sessions(uid=uid)) == 1
    # No avatar any more: the old one is cleared where the provider keeps one.
    chat.update_chat_user(ChatIdentity(uid, name="New Name"))
    user = harness.chat_user(uid)
    assert user is not None and user.get("avatar") in (None, "")


def test_update_leaves_an_unknown_user_alone(harness: Harness) -> None:
    if not supports(harness, "update"):
        return  # the refusal is covered above
    chat = service(harness)
    uid = fresh_uid()
    assert chat.update_chat_user(ChatIdentity(uid, name="Nobody Yet")).done
    assert harness.chat_user(uid) is None


@pytest.mark.parametrize("operation", ["deactivate", "erase"])
def test_deactivate_and_erase_end_every_session_first(
    harness: Harness, operation: UserOperation
) -> None:
    chat = service(harness)
    uid = fresh_uid()
    one = chat.get_session(ChatIdentity(uid, name="Leaving"), "s1").token
    two = chat.get_session(ChatIdentity(uid, name="Leaving"), "s2").token
    harness.connect(uid, "Leaving")
    run = chat.deactivate_chat_user if operation == "deactivate" else chat.erase_chat_user
    if not supports(harness, operation):
        with pytest.raises(UnsupportedOperationError) as info:
            run(ChatIdentity(uid))
        assert info.value.code == "ERROR_UNSUPPORTED_OPERATION"
        assert info.value.operation == operation
        # Refused before any side effect: both sessions are still there.
        assert len(chat.store.sessions(uid=uid)) == 2
        return
    change = run(ChatIdentity(uid))
    assert change.done and change.operation == operation and change.uid == uid
    assert change.ended == 2
    assert chat.store.sessions(uid=uid) == []
    assert chat.store.count_pending() == 0
    if harness.provider.revocation != "none":
        assert not harness.is_alive(one)
        assert not harness.is_alive(two)
    user = harness.chat_user(uid)
    if operation == "erase":
        assert user is None
    else:
        assert user is not None and user["active"] is False
    # Again: the user is already gone or inactive, which counts as done.
    assert run(ChatIdentity(uid)).done


def test_operations_during_an_outage_are_queued_then_finished(http_harness: Harness) -> None:
    harness = http_harness
    assert harness.faults is not None
    chat = service(harness)
    uid = fresh_uid()
    chat.get_session(ChatIdentity(uid, name="Before"), "s1")
    harness.connect(uid, "Before")
    operation: UserOperation = "update" if supports(harness, "update") else "erase"
    if not supports(harness, operation):
        return  # a provider with neither: the refusals are covered above
    harness.faults.status(503, times=50)
    if operation == "update":
        change = chat.update_chat_user(ChatIdentity(uid, name="After", avatar=AVATAR))
    else:
        change = chat.erase_chat_user(ChatIdentity(uid))
    harness.faults.clear()
    assert not change.done
    assert change.error == "ERROR_PROVIDER_UNAVAILABLE"
    queued = [e for e in chat.store.pending() if is_queued_operation(e.token)]
    assert len(queued) == 1 and queued[0].token.uid == uid
    assert harness.chat_user(uid) is not None and harness.chat_user(uid)["name"] == "Before"  # type: ignore[index]
    # revoke-pending (also run by the sweep command) finishes it.
    report = chat.revoke_pending()
    assert report.remaining == 0 and report.failed == 0
    user = harness.chat_user(uid)
    if operation == "update":
        assert user is not None and user["name"] == "After"
    else:
        assert user is None


def test_a_queued_operation_that_fails_again_stays_queued(http_harness: Harness) -> None:
    harness = http_harness
    assert harness.faults is not None
    if not supports(harness, "update"):
        return
    chat = service(harness)
    uid = fresh_uid()
    chat.get_session(ChatIdentity(uid, name="Before"), "s1")
    harness.faults.status(503, times=50)
    assert not chat.update_chat_user(ChatIdentity(uid, name="After")).done
    report = chat.revoke_pending()
    harness.faults.clear()
    assert (report.failed, report.remaining) == (1, 1)
    [entry] = chat.store.pending()
    assert entry.attempts == 2 and entry.last_error == "ERROR_PROVIDER_UNAVAILABLE"
    assert chat.revoke_pending().remaining == 0
    assert harness.chat_user(uid)["name"] == "After"  # type: ignore[index]


async def test_async_twins(harness: Harness) -> None:
    chat = service(harness)
    uid = fresh_uid()
    await chat.aget_session(ChatIdentity(uid, name="Async"), "a1")
    harness.connect(uid, "Async")
    if supports(harness, "update"):
        change = await chat.aupdate_chat_user(ChatIdentity(uid, name="Async New"))
        assert change.done
        assert harness.chat_user(uid)["name"] == "Async New"  # type: ignore[index]
    else:
        with pytest.raises(UnsupportedOperationError):
            await chat.aupdate_chat_user(ChatIdentity(uid, name="Async New"))
    if supports(harness, "deactivate"):
        assert (await chat.adeactivate_chat_user(ChatIdentity(uid))).ended == 1
        assert harness.chat_user(uid)["active"] is False  # type: ignore[index]
    if supports(harness, "erase"):
        assert (await chat.aerase_chat_user(ChatIdentity(uid))).done
        assert harness.chat_user(uid) is None
    else:
        with pytest.raises(UnsupportedOperationError):
            await chat.aerase_chat_user(ChatIdentity(uid))
    await chat.aclose()
