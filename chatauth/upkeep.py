"""The service's periodic upkeep, written once for both drivers (DESIGN §4, §8).

Three operations of :class:`~chatauth.service.ChatAuth`, each a generator of effects
(:mod:`chatauth.effects`) that ``revoke_pending``/``arevoke_pending``, ``sweep``/``asweep``
and ``replay_journal`` drive:

* :func:`revoke_pending` retries the queued revocations (and the queued chat-user
  operations of :mod:`chatauth.chat_users`, which share the queue);
* :func:`replay_journal` finishes what :class:`~chatauth.journal.EndJournal` kept while the
  store was down (ends of sessions, and revocations nobody could take);
* :func:`sweep` replays the journal, then ends the chat sessions nobody will be served again.
"""

from __future__ import annotations

import dataclasses
import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from chatauth import chat_users
from chatauth.effects import Blocking, Op, ProviderCall, StoreCall
from chatauth.errors import ProviderError, ProviderUnavailableError
from chatauth.http import Flow
from chatauth.identity import ChatIdentity
from chatauth.journal import JournalEntry
from chatauth.stores.base import PendingRevocation
from chatauth.tokens import ChatToken

if TYPE_CHECKING:
    from chatauth.service import ChatAuth

__all__ = [
    "DEFAULT_SESSION_IDLE",
    "RevocationReport",
    "SweepReport",
    "replay_journal",
    "revoke_pending",
    "seconds",
    "sweep",
]

logger = logging.getLogger("chatauth")

#: Seconds a chat session may go unserved before the sweep ends it: 14 days, the default app
#: session age of Django (``SESSION_COOKIE_AGE``) and of Starlette's ``SessionMiddleware``
#: (``max_age``). Adapters pass their framework's own (Flask: ``PERMANENT_SESSION_LIFETIME``,
#: 31 days by default, for permanent sessions).
DEFAULT_SESSION_IDLE = 14 * 24 * 3600.0


def seconds(value: float | timedelta) -> timedelta:
    """``value`` (seconds, or already a ``timedelta``) as a ``timedelta``."""
    return value if isinstance(value, timedelta) else timedelta(seconds=float(value))


@dataclasses.dataclass(frozen=True)
class RevocationReport:
    """What a :meth:`ChatAuth.revoke_pending <chatauth.service.ChatAuth.revoke_pending>` run did.

    Attributes:
        revoked: revocations that succeeded (or tokens found already dead/expired).
        failed: revocations that failed again and stay queued.
        remaining: entries still queued after the run.
    """

    revoked: int
    failed: int
    remaining: int


@dataclasses.dataclass(frozen=True)
class SweepReport:
    """What a :meth:`ChatAuth.sweep <chatauth.service.ChatAuth.sweep>` run did.

    Attributes:
        swept: tokens taken out of the store (past ``refresh_at``/expiry, or idle).
        revoked: of those, revoked at the provider during the run.
        queued: revocations that failed and were queued for ``revoke_pending``.
        journaled: journaled entries finished (``end_session_durably``'s ends, revocations
            kept while the store was down).
    """

    swept: int
    revoked: int
    queued: int
    journaled: int = 0


# -- pending revocations ---------------------------------------------------------------------
def _settled(chat: ChatAuth, entry: PendingRevocation) -> bool:
    """True if the entry needs no more work: its token expired, or nothing can revoke it.
    A queued chat-user operation (:mod:`chatauth.chat_users`) always needs its call."""
    if chat_users.is_queued_operation(entry.token):
        return False
    return entry.token.is_expired(now=chat.clock.now()) or chat.provider.revocation == "none"


def _pending_flow(chat: ChatAuth, token: ChatToken) -> Flow[Any]:
    """What finishes a pending entry: its revocation, or a queued chat-user operation."""
    if chat_users.is_queued_operation(token):
        return chat_users.replay_flow(chat, token)
    return chat.provider.revoke(token)


def revoke_pending(chat: ChatAuth, limit: int) -> Op[RevocationReport]:
    """Retry up to ``limit`` queued revocations (see ``ChatAuth.revoke_pending``)."""
    revoked = failed = 0
    entries: list[PendingRevocation] = yield StoreCall("pending", limit)
    for entry in entries:
        if not _settled(chat, entry):
            try:
                yield ProviderCall(_pending_flow(chat, entry.token))
            except (ProviderUnavailableError, ProviderError) as exc:
                yield StoreCall("retry_failed", entry, exc.code)
                failed += 1
                continue
        yield StoreCall("remove_pending", entry)
        revoked += 1
    remaining: int = yield StoreCall("count_pending")
    logger.info(
        "chatauth revoke-pending: %d revoked, %d failed, %d remaining",
        revoked,
        failed,
        remaining,
    )
    return RevocationReport(revoked=revoked, failed=failed, remaining=remaining)


# -- the end journal -------------------------------------------------------------------------
def replay_journal(chat: ChatAuth) -> Op[tuple[int, int]]:
    """Finish the journaled entries, oldest first; the first failure (the store still down)
    stops the replay and keeps what was not finished. Returns ``(finished, remaining)``."""
    journal = chat.journal
    if journal is None:
        return 0, 0
    done = 0
    for _ in range(2):  # an interrupted replay's copy first, then the current journal
        entries: list[JournalEntry] | None = yield Blocking(journal.claim)
        if entries is None:
            break
        for index, entry in enumerate(entries):
            try:
                yield from _finish_entry(chat, entry)
            except Exception:
                yield Blocking(journal.release, entries[index:])
                raise
            done += 1
        yield Blocking(journal.release, [])
    remaining: int = yield Blocking(len, journal)
    return done, remaining


def _finish_entry(chat: ChatAuth, entry: JournalEntry) -> Op[None]:
    if entry.key is not None:
        if entry.key.provider == chat.provider.name:
            yield from chat._end(ChatIdentity(entry.key.uid), entry.key)
        # else another provider's entry (the PROVIDER setting changed): nothing to end
        return
    if entry.token is None:  # pragma: no cover - the journal writes one or the other
        return
    token = chat.store.load(entry.token)
    if token.provider != chat.provider.name or token.is_expired(now=chat.clock.now()):
        return  # another provider's, or dead anyway
    try:
        yield ProviderCall(chat.provider.revoke(token))
    except (ProviderUnavailableError, ProviderError) as exc:
        # The store answers again (or this raises and the entry stays journaled).
        yield StoreCall("add_pending", token, exc.code)
        chat._log_kept(token, exc, "queued for revoke-pending")


# -- the sweep -------------------------------------------------------------------------------
def sweep(
    chat: ChatAuth, idle: float | timedelta | None, now: datetime | None, limit: int
) -> Op[SweepReport]:
    """Replay the journal, then take out and revoke the sessions nobody will be served again
    (see ``ChatAuth.sweep``)."""
    journaled = (yield from replay_journal(chat))[0]
    now = now or chat.clock.now()
    idle_before = now - (chat.session_idle if idle is None else seconds(idle))
    swept: list[ChatToken] = yield StoreCall(
        "sweep", chat.provider.name, now=now, idle_before=idle_before, limit=limit
    )
    revoked = queued = 0
    for token in (yield from _sweep_targets(chat, swept, now)):
        if (yield from chat._revoke_or_queue(token)):
            revoked += 1
        else:
            queued += 1
    for uid in dict.fromkeys(t.uid for t in swept):
        chat._ended(ChatIdentity(uid), [t for t in swept if t.uid == uid])
    logger.info(
        "chatauth sweep: %d swept, %d revoked, %d queued, %d journaled ends replayed",
        len(swept),
        revoked,
        queued,
        journaled,
    )
    return SweepReport(swept=len(swept), revoked=revoked, queued=queued, journaled=journaled)


def _sweep_targets(chat: ChatAuth, swept: list[ChatToken], now: datetime) -> Op[list[ChatToken]]:
    """Which swept tokens to revoke: none for providers without revocation, nor tokens
    already expired (dead anyway); for user-wide revocation one per UID, and only when
    the UID has no other stored session (revoking would end those too: their tokens
    keep the user's credential in use, and expire or are swept in turn)."""
    if chat.provider.revocation == "none":
        return []
    alive = [t for t in swept if not t.is_expired(now=now)]
    if chat.provider.revocation == "token":
        return alive
    targets = []
    for uid in dict.fromkeys(t.uid for t in alive):
        if not (yield StoreCall("sessions", chat.provider.name, uid)):
            targets += chat._to_revoke([t for t in alive if t.uid == uid])
    return targets
