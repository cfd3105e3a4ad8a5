"""The chat sessions this process served a moment ago, kept so that the next read of the same
session costs a dict lookup instead of a store round trip and the service's effect driver.

A cached read is the hot path of every chat page: the store read (a SQLite query, a Redis
round trip, an ORM query) and the :class:`~chatauth.session.ChatSession` built around it cost
more than the rest of the request. :class:`HitCache` keeps the session the service last served
for each key, for at most ``seconds`` (the ``LOCAL_CACHE`` setting) and never past the
moment the service would have done anything but serve it again:

- the token stops being fresh (``refresh_margin`` before it expires or is re-issued);
- the store's "served at" record is due again (the idle sweep must see the session used).

**Why a stale entry is bounded and harmless.** Every change this process makes to a stored
token (issue, end, refresh, sweep, chat-user operations) drops the entries it may touch
before the store is written (:meth:`HitCache.drop`, :meth:`HitCache.clear`, called by the
effect drivers), and an entry read before such a change is not stored after it (the
generation check of :meth:`HitCache.put`). A change made by *another* process (a logout
served by another worker) is seen here within ``seconds``. Until then only a request that
still carries the ended app session's id could be served the old token -- never a request of
another user or another app session, since the key holds both -- and the token it gets was
revoked by that logout. ``LOCAL_CACHE = 0`` turns the cache off.
"""

from __future__ import annotations

import threading

from chatauth.identity import ChatIdentity
from chatauth.session import ChatSession
from chatauth.tokens import SessionKey

__all__ = ["DEFAULT_LOCAL_CACHE", "MAX_LOCAL_CACHE", "HitCache"]

#: Seconds a served chat session is kept in the process by default.
DEFAULT_LOCAL_CACHE = 5.0
#: The longest ``LOCAL_CACHE`` accepted: how late another process's logout may be seen here.
MAX_LOCAL_CACHE = 60.0

#: Entries kept at most: one per chat session served in the last ``seconds``.
MAX_ENTRIES = 100_000


class HitCache:
    """Chat sessions served recently, by their store key's digest.

    Reads take no lock (one dict lookup, atomic under the GIL); writers take one, so that
    the generation they compare and the entries they change agree.

    Args:
        seconds: how long an entry may be served, at most; ``0`` keeps nothing.
        size: entries kept at most; the oldest goes first.
    """

    __slots__ = ("_entries", "_guard", "generation", "seconds", "size")

    def __init__(self, seconds: float, size: int = MAX_ENTRIES) -> None:
        self.seconds = seconds
        self.size = size
        #: Bumped by every :meth:`drop` and :meth:`clear`: a read begun before a change is
        #: not kept after it.
        self.generation = 0
        # (uid, app session id) -> (session, until): one service has one provider, and a
        # tuple is cheaper to look up than the store key's sha256 digest.
        self._entries: dict[tuple[str, str | None], tuple[ChatSession, float]] = {}
        self._guard = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        # The entries hold tokens and app session ids: only their number is shown.
        return f"<HitCache {len(self._entries)} sessions, {self.seconds:g} s>"

    def get(
        self, identity: ChatIdentity, app_session: str | None, now: float
    ) -> ChatSession | None:
        """The session kept for ``identity`` in ``app_session`` if it is still servable at
        ``now`` (the clock's monotonic seconds). A changed display name or avatar is not
        served from here: the service builds the session again."""
        entry = self._entries.get((identity.uid, app_session))
        if entry is None or entry[1] <= now:
            return None
        session = entry[0]
        if session.identity is not identity and session.identity != identity:
            return None
        return session

    def put(self, key: SessionKey, session: ChatSession, until: float, generation: int) -> None:
        """Keep ``session`` for ``key`` until ``until`` (monotonic seconds), unless an entry
        was dropped since ``generation`` was read: the session may be the one that change
        ended."""
        if self.seconds <= 0:
            return
        with self._guard:
            if generation != self.generation:
                return
            entries = self._entries
            slot = (key.uid, key.app_session)
            if slot not in entries and len(entries) >= self.size:
                del entries[next(iter(entries))]
            entries[slot] = (session, until)

    def drop(self, key: SessionKey) -> None:
        """Forget the session of ``key``: its stored token is about to change."""
        with self._guard:
            self.generation += 1
            if type(key) is SessionKey:
                self._entries.pop((key.uid, key.app_session), None)
            else:  # a key known only by its digest (the end journal's): which entry is unknown
                self._entries.clear()

    def clear(self) -> None:
        """Forget every session: a change is about to touch tokens of several keys."""
        with self._guard:
            self.generation += 1
            self._entries.clear()
