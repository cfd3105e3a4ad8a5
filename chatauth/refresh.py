"""Replacing a token the chat SDK rejected (``POST <prefix>/token/refresh``, DESIGN §5).

A chat SDK calls its refresh hook (Stream ``tokenProvider``, Sendbird
``onSessionTokenRequired``, Twilio ``tokenAboutToExpire``, CometChat re-login, Matrix soft
logout) when the provider refuses the token it holds. :func:`refresh_session` answers it:

- the rejected token equals the stored one (constant-time comparison): that token is taken out
  of the store and revoked at the provider, and a new one is issued and returned;
- it does not (another tab or a concurrent refresh already replaced it, or it is unknown): the
  current session is returned, as ``GET <prefix>/token`` would, with no replacement.

The comparison and the removal happen under the store's issue lock of the session's key, so
two refreshes of one rejected token replace it once: the second sees the first's successor
(or an empty slot) and gets the session :meth:`~chatauth.ChatAuth.get_session` serves, the
same token the first one got (its single flight issues once per key).

**Bounded per session.** At most :data:`REFRESH_LIMIT` replacements per chat session
(provider, UID, app session) in any :data:`REFRESH_WINDOW` seconds, counted in this process
on the service's clock; past it :class:`~chatauth.errors.RefreshLimitError` (429 with
``Retry-After``) until the oldest replacement leaves the window. Only replacements count:
an answer without one costs what ``GET <prefix>/token`` costs. With several worker processes
each counts its own (the bound is then per process). Change it per service with
``refresh_limiter(service).limit`` / ``.window``.
"""

from __future__ import annotations

import collections
import hmac
import math
import threading
import weakref
from typing import TYPE_CHECKING, Any

from chatauth.effects import Locked, Op, StoreCall
from chatauth.errors import RefreshLimitError
from chatauth.session import ChatSession
from chatauth.tokens import ChatToken, SessionKey

if TYPE_CHECKING:
    from chatauth.service import ChatAuth

__all__ = [
    "REFRESH_LIMIT",
    "REFRESH_WINDOW",
    "RefreshLimiter",
    "arefresh_session",
    "refresh_limiter",
    "refresh_session",
]

#: Replacements allowed per chat session in :data:`REFRESH_WINDOW` seconds. Three covers an
#: SDK reconnecting after a provider restart and a second tab; a token rejected again at once
#: (a misconfigured secret) is not re-issued in a loop.
REFRESH_LIMIT = 3
#: The window of :data:`REFRESH_LIMIT`, seconds.
REFRESH_WINDOW = 60.0

# Past this many sessions tracked, sessions with no replacement left in the window are
# forgotten (a long-running process does not keep one entry per session ever refreshed).
_PRUNE_AT = 1024


class RefreshLimiter:
    """Counts the replacements of each chat session in a sliding window (one process).

    Args:
        clock: anything with ``monotonic()`` seconds (the service's clock).
        limit: replacements allowed per session in ``window`` (a whole number, at least 1).
        window: seconds.
    """

    def __init__(self, clock: Any, limit: int = REFRESH_LIMIT, window: float = REFRESH_WINDOW):
        self.clock = clock
        self.limit = limit
        self.window = window
        self._seen: dict[str, collections.deque[float]] = {}
        self._guard = threading.Lock()

    def take(self, key: SessionKey) -> None:
        """Count one replacement of ``key``'s session.

        Raises:
            RefreshLimitError: ``limit`` replacements already happened in the window; its
                ``retry_after`` is the whole seconds until the oldest of them leaves it.
        """
        now = self.clock.monotonic()
        with self._guard:
            times = self._seen.setdefault(key.digest, collections.deque())
            while times and times[0] <= now - self.window:
                times.popleft()
            if len(times) >= self.limit:
                wait = times[0] + self.window - now
                raise RefreshLimitError(
                    f"This chat session's token was replaced {self.limit} times in "
                    f"{self.window:g} seconds; try again later.",
                    retry_after=math.ceil(wait),
                )
            times.append(now)
            if len(self._seen) > _PRUNE_AT:
                self._seen = {
                    k: v for k, v in self._seen.items() if v and v[-1] > now - self.window
                }


_LIMITERS: weakref.WeakKeyDictionary[ChatAuth, RefreshLimiter] = weakref.WeakKeyDictionary()
_LIMITERS_GUARD = threading.Lock()


def refresh_limiter(service: ChatAuth) -> RefreshLimiter:
    """The :class:`RefreshLimiter` of ``service`` (made on first use, on its clock)."""
    with _LIMITERS_GUARD:
        limiter = _LIMITERS.get(service)
        if limiter is None:
            limiter = _LIMITERS[service] = RefreshLimiter(service.clock)
        return limiter


def _matches(stored: ChatToken | None, rejected: str) -> bool:
    # Bytes: compare_digest refuses non-ASCII str, and a client may send anything.
    return stored is not None and hmac.compare_digest(
        stored.value.encode(), rejected.encode("utf-8", "surrogatepass")
    )


def refresh_session(
    service: ChatAuth, user: Any, app_session: str | None, rejected: str
) -> ChatSession:
    """Replace the session's token if it is ``rejected``; return the session to use now.

    Args:
        service: the app's :class:`~chatauth.ChatAuth`.
        user: the app user or a :class:`~chatauth.ChatIdentity`.
        app_session: the app-session id the session is bound to (``None``: one per user).
        rejected: the token value the chat SDK says the provider refused.

    Returns:
        The new session when ``rejected`` was the stored token (it is revoked, or queued for
        ``revoke-pending`` if the provider is down), else the current one.

    Raises:
        RefreshLimitError: too many replacements of this session (see the module docstring).
        NotAuthenticatedError, InvalidUIDError, ProviderError, ProviderUnavailableError,
        StoreUnavailableError: as :meth:`~chatauth.ChatAuth.get_session`.
    """
    session: ChatSession = service._drive(_refresh(service, user, app_session, rejected))
    return session


async def arefresh_session(
    service: ChatAuth, user: Any, app_session: str | None, rejected: str
) -> ChatSession:
    """Async twin of :func:`refresh_session`; never blocks the event loop."""
    session: ChatSession = await service._adrive(_refresh(service, user, app_session, rejected))
    return session


def _refresh(
    service: ChatAuth, user: Any, app_session: str | None, rejected: str
) -> Op[ChatSession]:
    """The refresh, one operation for both drivers (:mod:`chatauth.effects`)."""
    identity = service.identity_for(user)
    key = SessionKey(service.provider.name, identity.uid, app_session)
    replaced = yield Locked(key, _take_rejected(service, key, rejected))
    if replaced is not None:
        # Revoke (or queue) and fire on_session_ended, as a logout would; for user-wide
        # revocation the user's other stored tokens go too, so no device is served a dead one.
        yield from service._end_tokens([replaced])
    return (yield from service._get_session(identity, app_session))


def _take_rejected(service: ChatAuth, key: SessionKey, rejected: str) -> Op[ChatToken | None]:
    """Under the issue lock: take the stored token out if it is the rejected one."""
    stored = yield StoreCall("get", key)
    if not _matches(stored, rejected):
        return None
    refresh_limiter(service).take(key)
    popped: ChatToken | None = yield StoreCall("pop", key)
    return popped
