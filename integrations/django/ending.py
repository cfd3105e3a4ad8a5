"""Ending stored chat sessions that no request names: the admin action and the sweep of
tokens nobody is served any more.

The core ends a session given the user and the app session key; the admin and the sweep only
have the stored rows (whose app session key is a digest). They pop the rows and hand the
tokens to :meth:`ChatAuth.end_tokens`, which revokes them the way ``end_session`` does; a failed
revocation is queued for ``chatauth_revoke_pending``.
"""

from __future__ import annotations

from chatauth.service import ChatAuth
from chatauth.tokens import ChatToken

from .store import DjangoStore

__all__ = ["end_stored", "sweep_stale"]


def _revoke(chatauth: ChatAuth, popped: list[ChatToken]) -> int:
    """Revoke as ``end_session`` would and fire the ended hooks; returns revocations queued."""
    return chatauth.end_tokens(popped)


def end_stored(chatauth: ChatAuth, store: DjangoStore, digests: list[str]) -> tuple[int, int]:
    """End the chat sessions stored under these key digests.

    Returns:
        (sessions ended, revocations queued because the provider failed).
    """
    popped = store.pop_keys(digests)
    return len(popped), _revoke(chatauth, popped)


def sweep_stale(chatauth: ChatAuth, store: DjangoStore) -> tuple[int, int]:
    """End stored sessions chatauth no longer serves (past ``usable_until``): those of app
    sessions that expired or were flushed without a logout.

    Returns:
        (sessions ended, revocations queued).
    """
    popped = store.pop_stale()
    return len(popped), _revoke(chatauth, popped)
