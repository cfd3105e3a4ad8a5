"""The chat user follows the app user: profile update, deactivation and erasure at the provider.

chatauth creates the chat user at the first chat session; this module keeps it in step
afterwards, through three operations of :class:`~chatauth.service.ChatAuth`:

=============================== ================================================================
``update_chat_user(user)``       push the mapped display name and avatar to the provider's
                                 profile (:meth:`~chatauth.providers.base.Provider.update_user`)
``deactivate_chat_user(user)``   end every chat session of the user (as ``end_all_sessions``),
                                 then deactivate the chat user at the provider
``erase_chat_user(user)``        end every chat session, then delete the chat user and its
                                 profile for good (GDPR erasure)
=============================== ================================================================

each with its ``a``-prefixed async twin. A provider without a documented call for an
operation refuses it with :class:`~chatauth.errors.UnsupportedOperationError` before anything
happens (``provider.user_operations`` says which it has).

Written once for sync and async, as every operation of the service is
(:mod:`chatauth.effects`): :func:`_operation` yields effects (the service's own end-all-sessions
operation, the provider flow, the store call that queues) and :func:`change` / :func:`achange`
run it with the service's sync and async drivers. The provider call still refuses an
operation it has no call for before the first effect.

Nothing is dropped when the provider is down or refuses (DESIGN §8): the operation is queued
in the store's pending-revocation list, as a failed revocation is, and
:meth:`~chatauth.service.ChatAuth.revoke_pending` (run by ``revoke-pending`` and by ``sweep``)
finishes it. The queued entry is a :class:`~chatauth.tokens.ChatToken` whose ``data`` names the
operation (and, for an update, the profile to push), so every store keeps it as it keeps a
token, with no schema change: see :func:`queued_entry` and :func:`replay_flow`.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import TYPE_CHECKING, Any, cast, get_args

from chatauth.effects import Op, ProviderCall, StoreCall
from chatauth.errors import (
    ChatAuthError,
    ProviderError,
    ProviderUnavailableError,
    UnsupportedOperationError,
)
from chatauth.http import Flow
from chatauth.identity import ChatIdentity
from chatauth.providers.base import UserOperation, no_requests
from chatauth.tokens import ChatToken, utcnow

if TYPE_CHECKING:
    from chatauth.service import ChatAuth

__all__ = [
    "OPERATIONS",
    "ChatUserChange",
    "achange",
    "change",
    "is_queued_operation",
    "profile_changed",
    "provider_flow",
    "queued_entry",
    "replay_flow",
]

logger = logging.getLogger("chatauth")

#: Every chat-user operation, in the order an app user's life meets them.
OPERATIONS: tuple[UserOperation, ...] = get_args(UserOperation)

#: The ``data`` key that marks a pending entry as a queued operation, not a token.
_OPERATION_KEY = "chatauth.user_operation"


@dataclasses.dataclass(frozen=True)
class ChatUserChange:
    """What one chat-user operation did.

    Attributes:
        operation: ``"update"``, ``"deactivate"`` or ``"erase"``.
        uid: the chat user's UID.
        done: ``True`` when the provider confirmed it now; ``False`` when it failed and was
            queued, to be finished by ``revoke-pending`` / ``sweep``.
        ended: how many stored chat sessions were ended first (0 for an update).
        error: the code of the failure that queued it (``ERROR_PROVIDER_UNAVAILABLE``, the
            provider's own code), or ``None``.
    """

    operation: UserOperation
    uid: str
    done: bool
    ended: int = 0
    error: str | None = None


# -- the queue ---------------------------------------------------------------------------------
def queued_entry(operation: UserOperation, identity: ChatIdentity, provider: str) -> ChatToken:
    """The pending-list entry standing for ``operation`` on ``identity`` at ``provider``.

    Its ``value`` is a fixed marker, not a credential; ``data`` holds the operation and, for
    an update, the name and avatar to push when it is replayed. ``expires_at`` is ``None``, so
    no store or sweep ever drops it as an expired token.
    """
    data: dict[str, str] = {_OPERATION_KEY: operation}
    if operation == "update":
        data.update({"name": identity.name or "", "avatar": identity.avatar or ""})
    return ChatToken(
        value=f"chatauth-user-{operation}",
        uid=identity.uid,
        provider=provider,
        issued_at=utcnow(),
        expires_at=None,
        data=data,
    )


def is_queued_operation(token: ChatToken) -> bool:
    """Whether a pending entry is a queued chat-user operation (not a token to revoke)."""
    return token.data.get(_OPERATION_KEY) in OPERATIONS


def _queued(token: ChatToken) -> tuple[UserOperation, ChatIdentity]:
    operation = cast(UserOperation, token.data[_OPERATION_KEY])
    identity = ChatIdentity(
        token.uid, name=token.data.get("name") or None, avatar=token.data.get("avatar") or None
    )
    return operation, identity


def replay_flow(service: ChatAuth, token: ChatToken) -> Flow[None]:
    """The flow that finishes a queued operation (``token`` is :func:`queued_entry`'s).

    The sessions were ended when the operation was first asked for, so only the provider
    call is left. An entry the current provider cannot do (the ``PROVIDER`` setting changed
    since) is logged at WARNING and counts as finished.
    """
    operation, identity = _queued(token)
    if token.provider == service.provider.name:
        try:
            return provider_flow(service, operation, identity)
        except UnsupportedOperationError:
            pass
    logger.warning(
        "chatauth dropped a queued %s of %s uid %s: provider %s cannot do it",
        operation,
        token.provider,
        token.uid,
        service.provider.name,
    )
    return no_requests(None)


# -- the operation, written once -----------------------------------------------------------
def provider_flow(
    service: ChatAuth, operation: UserOperation, identity: ChatIdentity
) -> Flow[None]:
    """The provider's flow for ``operation``.

    Raises:
        UnsupportedOperationError: the provider has no documented call for it (raised now,
            before any request).
    """
    provider = service.provider
    method = getattr(provider, f"{operation}_user", None)
    if method is None or operation not in getattr(provider, "user_operations", frozenset()):
        if method is not None:
            method(identity)  # a BaseProvider raises its own named refusal here
        raise UnsupportedOperationError(
            f"{provider.name} cannot {operation} a chat user.",
            provider=provider.name,
            operation=operation,
        )
    return cast(Flow[None], method(identity))


def _operation(service: ChatAuth, operation: UserOperation, user: Any) -> Op[ChatUserChange]:
    identity = service.identity_for(user)
    flow = provider_flow(service, operation, identity)  # refuses before any side effect
    ended: list[ChatToken] = []
    if operation != "update":
        # First, so no chat token outlives the chat user, even if the provider call fails.
        ended = yield from service._end_all_sessions(identity)
    try:
        yield ProviderCall(flow)
    except (ProviderUnavailableError, ProviderError) as exc:
        for token in exc.unrevoked:  # a login the flow made and could not end (Matrix jwt)
            yield StoreCall("add_pending", token, exc.code)
        entry = queued_entry(operation, identity, service.provider.name)
        yield StoreCall("add_pending", entry, exc.code)
        logger.warning(
            "chatauth could not %s the %s chat user of uid %s (%s); queued for revoke-pending",
            operation,
            service.provider.name,
            identity.uid,
            exc.code,
        )
        return ChatUserChange(operation, identity.uid, False, len(ended), exc.code)
    logger.info(
        "chatauth %s: %s chat user of uid %s", operation, service.provider.name, identity.uid
    )
    return ChatUserChange(operation, identity.uid, True, len(ended))


def _changed(service: ChatAuth, change: ChatUserChange) -> ChatUserChange:
    for hook in getattr(service, "on_chat_user_changed", ()):
        try:
            hook(change)
        except Exception:
            logger.exception("chatauth on_chat_user_changed hook failed")
    return change


def profile_changed(service: ChatAuth, before: Any, after: Any) -> bool:
    """Whether ``after`` maps to another chat display name or avatar than ``before`` (two
    states of one app user), as the service's mapper sees them: what an adapter asks before
    calling :meth:`~chatauth.service.ChatAuth.update_chat_user` on a save.

    A user the mapper cannot map (no UID yet, an invalid one) counts as unchanged.
    """
    try:
        old, new = service.identity_for(before), service.identity_for(after)
    except ChatAuthError:
        return False
    return old.uid == new.uid and (old.name, old.avatar) != (new.name, new.avatar)


def change(service: ChatAuth, operation: UserOperation, user: Any) -> ChatUserChange:
    """Run ``operation`` for ``user`` (an app user or a :class:`ChatIdentity`), sync.

    Raises:
        UnsupportedOperationError: the provider cannot do it (nothing was done).
        NotAuthenticatedError, InvalidUIDError: as :meth:`ChatAuth.identity_for`.
        StoreUnavailableError: the store is down (provider failures are queued, not raised).
    """
    result: ChatUserChange = service._drive(_operation(service, operation, user))
    return _changed(service, result)


async def achange(service: ChatAuth, operation: UserOperation, user: Any) -> ChatUserChange:
    """Async twin of :func:`change`: the same operation, driven on the event loop."""
    result: ChatUserChange = await service._adrive(_operation(service, operation, user))
    return _changed(service, result)
