"""Ending stored chat sessions that no request names: the admin action, the sweep of tokens
nobody is served any more, and the sweep of tokens whose Django session is gone.

The core ends a session given the user and the app session key; the admin and the sweeps only
have the stored rows (whose app session key is a digest). They pop the rows and hand the
tokens to :meth:`ChatAuth.end_tokens`, which revokes them the way ``end_session`` does; a failed
revocation is queued for ``chatauth_revoke_pending``.
"""

from __future__ import annotations

from datetime import timedelta
from importlib import import_module

from django.conf import settings
from django.utils import timezone

from chatauth.binding import read_slot
from chatauth.service import ChatAuth
from chatauth.tokens import ChatToken, SessionKey

from .store import DjangoStore

__all__ = ["GONE_GRACE", "end_gone", "end_stored", "live_session_digests", "sweep_stale"]

#: How recently served a token is left alone by :func:`end_gone` although no session row holds
#: its key: the request that bound a chat session stores the token before Django saves the
#: session row with the binding (at the end of that request).
GONE_GRACE = timedelta(minutes=5)


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


def live_session_digests(provider: str) -> set[str] | None:
    """The key digests of the chat sessions bound in the Django sessions that still exist:
    every row not expired of a database session backend (``SESSION_ENGINE`` ``db``,
    ``cached_db``, or one of yours whose ``SessionStore`` has ``get_model_class``).

    Returns:
        the set of :attr:`SessionKey.digest <chatauth.tokens.SessionKey.digest>` values, or
        ``None`` when sessions are not kept in the database (cache, files, signed cookies):
        whether a session still exists cannot be told then.
    """
    store_class = import_module(settings.SESSION_ENGINE).SessionStore
    get_model = getattr(store_class, "get_model_class", None)
    if get_model is None:
        return None
    decoder = store_class()
    rows = get_model()._default_manager.filter(expire_date__gt=timezone.now())
    live: set[str] = set()
    for data in rows.values_list("session_data", flat=True).iterator(chunk_size=2000):
        slot = read_slot(decoder.decode(data))
        if slot is not None and slot[1] is not None:
            live.add(SessionKey(provider, slot[1], slot[0]).digest)
    return live


def end_gone(chatauth: ChatAuth, limit: int = 1000) -> tuple[int, int] | None:
    """End the stored chat sessions whose Django session is gone (deleted, flushed or
    expired without a logout, e.g. ``Session.objects.all().delete()``), so none outlives it
    by :attr:`~chatauth.service.ChatAuth.session_idle` (``SESSION_COOKIE_AGE``).

    The stored keys are listed before the session rows are read: a key stored later belongs
    to a session whose row exists by then. Keys without an app session (token-auth APIs)
    are never taken, nor tokens served within :data:`GONE_GRACE`.

    Args:
        limit: most chat sessions ended per run.

    Returns:
        ``(ended, queued)``: chat sessions ended, revocations queued because the provider
        failed; ``None`` when the session backend is not a database (nothing done).

    Raises:
        StoreUnavailableError: the token store is down.
    """
    provider = chatauth.provider.name
    stored = chatauth.store.session_keys(provider)
    live = live_session_digests(provider)
    if live is None:
        return None
    recent = chatauth.clock.now() - GONE_GRACE
    popped: list[ChatToken] = []
    for key in stored:
        if len(popped) >= limit:
            break
        if key.digest in live or key.digest == SessionKey(provider, key.uid).digest:
            continue
        token = chatauth.store.get(key)
        if token is None or (token.served_at is not None and token.served_at >= recent):
            continue
        token = chatauth.store.pop(key)
        if token is not None:
            popped.append(token)
    return len(popped), _revoke(chatauth, popped)
