"""Ending stored chat sessions that no request names: the admin action and the sweep of
tokens nobody is served any more.

The core ends a session given the user and the app session key; the admin and the sweep only
have the stored rows (whose app session key is a digest). They pop the rows and then revoke
the way :meth:`ChatAuth.end_session` does: every token for ``revocation="token"`` providers,
the newest per user for ``"user"`` ones (after dropping the user's other tokens too), nothing
for ``"none"``; a failed revocation is queued for ``chatauth_revoke_pending``.
"""

from __future__ import annotations

from collections import defaultdict

from chatauth.errors import ProviderError, ProviderUnavailableError
from chatauth.http import run_flow
from chatauth.identity import ChatIdentity
from chatauth.service import ChatAuth
from chatauth.tokens import ChatToken

from .store import DjangoStore

__all__ = ["end_stored", "sweep_stale"]


def _revoke(chatauth: ChatAuth, popped: list[ChatToken]) -> int:
    """Revoke as ``end_session`` would and fire the ended hooks; returns revocations queued."""
    by_uid: dict[str, list[ChatToken]] = defaultdict(list)
    for token in popped:
        by_uid[token.uid].append(token)
    queued = 0
    for uid, tokens in by_uid.items():
        if chatauth.provider.revocation == "user":
            tokens += chatauth.store.pop_user(chatauth.provider.name, uid)
            to_revoke = sorted(tokens, key=lambda t: t.issued_at)[-1:]
        elif chatauth.provider.revocation == "token":
            to_revoke = tokens
        else:
            to_revoke = []
        for token in to_revoke:
            try:
                run_flow(
                    chatauth.provider.revoke(token),
                    chatauth.http_client,
                    provider=chatauth.provider.name,
                    policy=chatauth.retry,
                )
            except (ProviderUnavailableError, ProviderError) as exc:
                chatauth.store.add_pending(token, exc.code)
                queued += 1
        identity = ChatIdentity(uid)
        for hook in chatauth.on_session_ended:
            hook(identity, tokens)
    return queued


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
