"""chatauth.chat_users without a network: the hook, change detection, and the refusal of a
provider (a custom one too) that lacks an operation."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from chatauth import ChatAuth, ChatIdentity, IdentityMapper, UnsupportedOperationError
from chatauth.chat_users import ChatUserChange, profile_changed
from chatauth.providers.jwt import JWTProvider, JWTSigner
from chatauth.stores.memory import MemoryStore
from chatauth.tokens import SessionKey

SECRET = "chat-users-core-tests-secret-0123456789"


class User:
    def __init__(self, pk: int, name: str | None = None, avatar: str | None = None) -> None:
        self.pk, self.name, self.avatar = pk, name, avatar


def service() -> ChatAuth:
    mapper = IdentityMapper(name="name", avatar="avatar")
    return ChatAuth(JWTProvider(JWTSigner("HS256", secret=SECRET)), MemoryStore(), mapper=mapper)


def test_profile_changed_follows_the_mapper() -> None:
    chat = service()
    assert profile_changed(chat, User(1, "Ada"), User(1, "Ada Lovelace"))
    assert profile_changed(chat, User(1, "Ada", "a.png"), User(1, "Ada", "b.png"))
    assert not profile_changed(chat, User(1, "Ada", "a.png"), User(1, "Ada", "a.png"))
    # Another UID is another chat user, not a change of this one.
    assert not profile_changed(chat, User(1, "Ada"), User(2, "Bob"))


@pytest.mark.parametrize("operation", ["update", "deactivate", "erase"])
def test_a_refusal_comes_before_any_side_effect(operation: str) -> None:
    chat = service()
    seen: list[ChatUserChange] = []
    chat.on_chat_user_changed.append(seen.append)
    chat.get_session(ChatIdentity("user-1"), "s1")
    run = getattr(chat, f"{operation}_chat_user")
    with pytest.raises(UnsupportedOperationError) as info:
        run(User(1))
    assert info.value.code == "ERROR_UNSUPPORTED_OPERATION"
    assert (info.value.provider, info.value.operation) == ("jwt", operation)
    assert "jwt cannot" in str(info.value)
    assert chat.store.get(SessionKey("jwt", "user-1", "s1")) is not None
    assert seen == []


class NoOpsProvider:
    """A custom provider that predates chat-user operations (no user_operations at all)."""

    name = "custom"
    revocation = "none"

    def __init__(self) -> None:
        self.uid_rules = JWTProvider(JWTSigner("HS256", secret=SECRET)).uid_rules


async def test_a_custom_provider_without_the_operations_is_refused() -> None:
    chat = ChatAuth(NoOpsProvider(), MemoryStore())  # type: ignore[arg-type]
    with pytest.raises(UnsupportedOperationError):
        chat.erase_chat_user(ChatIdentity("user-1"))
    with pytest.raises(UnsupportedOperationError):
        await chat.aupdate_chat_user(ChatIdentity("user-1"))


def test_a_failing_hook_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    class Provider(JWTProvider):
        user_operations: Any = frozenset({"update"})

        def update_user(self, identity: ChatIdentity) -> Any:
            return None
            yield

    chat = ChatAuth(Provider(JWTSigner("HS256", secret=SECRET)), MemoryStore())

    def broken(change: ChatUserChange) -> None:
        raise RuntimeError("hook bug")

    seen: list[ChatUserChange] = []
    chat.on_chat_user_changed += [broken, seen.append]
    with caplog.at_level(logging.ERROR, logger="chatauth"):
        change = chat.update_chat_user(ChatIdentity("user-1", name="A"))
    assert change == ChatUserChange("update", "user-1", done=True)
    assert seen == [change]
    assert "on_chat_user_changed hook failed" in caplog.text
