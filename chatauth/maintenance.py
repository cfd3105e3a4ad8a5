"""The bodies of the maintenance commands, shared by ``chatauth`` (the core CLI), ``flask
chatauth ...`` and ``manage.py chatauth_...``: same work, same output, same exit codes.

Each returns an :class:`Outcome`: the lines to print (counts and names, never a token or a
secret) and the exit code. One rule for all of them:

== ==================================================================================
0  done (``revoke-pending``, ``sweep``: nothing left queued)
1  ``revoke-pending`` or ``sweep`` left revocations queued (failed again, or past ``--limit``)
2  usage or configuration error (bad arguments, missing or malformed settings)
3  the provider or the store is unreachable, or the provider refused the credentials
== ==================================================================================

A :class:`~chatauth.errors.ChatAuthError` raised by the work maps to 2 or 3 through
:func:`exit_code_for`; the adapters print ``str(exc)`` (``[CODE] message``, never a secret).
"""

from __future__ import annotations

import dataclasses
import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import TYPE_CHECKING, Any

from chatauth.errors import (
    ChatAuthError,
    ProviderError,
    ProviderUnavailableError,
)

if TYPE_CHECKING:
    from chatauth.service import ChatAuth

__all__ = [
    "EXIT_CONFIG",
    "EXIT_OK",
    "EXIT_PENDING",
    "EXIT_UNAVAILABLE",
    "Outcome",
    "chat_user",
    "check",
    "end_sessions",
    "exit_code_for",
    "loop",
    "revoke_pending",
    "sweep",
]

EXIT_OK = 0
EXIT_PENDING = 1
EXIT_CONFIG = 2
EXIT_UNAVAILABLE = 3


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What a maintenance command did.

    Attributes:
        lines: the output lines, without newlines.
        exit_code: see the module docstring.
        failure: why the exit code is not 0 (a line for stderr), or ``None``.
    """

    lines: tuple[str, ...]
    exit_code: int = EXIT_OK
    failure: str | None = None


def exit_code_for(exc: ChatAuthError) -> int:
    """3 for an unreachable provider or store or refused credentials, else 2."""
    if isinstance(exc, ProviderUnavailableError | ProviderError):
        return EXIT_UNAVAILABLE
    return EXIT_CONFIG


def revoke_pending(service: ChatAuth, limit: int = 100) -> Outcome:
    """Retry up to ``limit`` queued revocations (:meth:`ChatAuth.revoke_pending`).

    Returns:
        One line ``revoke-pending: revoked=N failed=N remaining=N``; exit code 1 while
        revocations stay queued.

    Raises:
        StoreUnavailableError: the store is down.
    """
    report = service.revoke_pending(limit)
    line = (
        f"revoke-pending: revoked={report.revoked} failed={report.failed} "
        f"remaining={report.remaining}"
    )
    if report.remaining:
        failure = (
            f"{report.remaining} revocation(s) still queued ({report.failed} failed again); "
            "run revoke-pending again later."
        )
        return Outcome((line,), EXIT_PENDING, failure)
    return Outcome((line,))


def sweep(service: ChatAuth, idle: float | None = None, limit: int = 1000) -> Outcome:
    """End the chat sessions nobody is served any more (:meth:`ChatAuth.sweep`: idle for
    ``idle`` seconds, default the service's ``session_idle``, or past their re-issue time),
    then retry queued revocations (:func:`revoke_pending`), which now include the sweep's
    failures.

    Returns:
        ``sweep: swept=N revoked=N queued=N journaled=N`` (``journaled``: logouts the
        store missed, finished now) and the ``revoke-pending`` line; exit code 1 while
        revocations stay queued.

    Raises:
        StoreUnavailableError: the store is down.
    """
    report = service.sweep(idle, limit=limit)
    line = (
        f"sweep: swept={report.swept} revoked={report.revoked} queued={report.queued}"
        f" journaled={report.journaled}"
    )
    pending = revoke_pending(service, limit)
    return dataclasses.replace(pending, lines=(line, *pending.lines))


def end_sessions(service: ChatAuth, user: Any) -> Outcome:
    """End every chat session of ``user`` (an app user or a ``ChatIdentity``).

    Returns:
        One line ``end-sessions: uid=U ended=N queued_revocations=N``.

    Raises:
        InvalidUIDError: the user's UID is not valid for the provider.
        StoreUnavailableError: the store is down (provider outages are queued, not raised).
    """
    identity = service.identity_for(user)
    before = service.store.count_pending()
    ended = service.end_all_sessions(identity)
    queued = max(0, service.store.count_pending() - before)
    return Outcome(
        (f"end-sessions: uid={identity.uid} ended={len(ended)} queued_revocations={queued}",)
    )


def chat_user(service: ChatAuth, operation: str, user: Any) -> Outcome:
    """Run a chat-user operation (:mod:`chatauth.chat_users`: ``update``, ``deactivate`` or
    ``erase``) for ``user`` (an app user or a ``ChatIdentity``).

    Returns:
        One line ``chat-user: <operation> uid=U done ended=N`` (or ``queued (CODE)``); exit
        code 1 when the provider failed and the operation was queued for ``revoke-pending``.

    Raises:
        UnsupportedOperationError: the provider has no call for it (exit code 2).
        InvalidUIDError: the user's UID is not valid for the provider.
        StoreUnavailableError: the store is down.
    """
    from chatauth import chat_users

    if operation not in chat_users.OPERATIONS:
        raise ChatAuthError(
            f"Unknown operation {operation!r}: one of {', '.join(chat_users.OPERATIONS)}.",
            code="ERROR_CONFIG",
        )
    run = {
        "update": service.update_chat_user,
        "deactivate": service.deactivate_chat_user,
        "erase": service.erase_chat_user,
    }[operation]
    change = run(user)
    state = "done" if change.done else f"queued ({change.error})"
    line = f"chat-user: {operation} uid={change.uid} {state} ended={change.ended}"
    if change.done:
        return Outcome((line,))
    return Outcome(
        (line,),
        EXIT_PENDING,
        f"the provider failed; the {operation} is queued: run revoke-pending (or sweep) later.",
    )


def check(service: ChatAuth) -> Outcome:
    """Reach the provider with the configured secret and the store; report what works.

    Returns:
        ``provider: ok key=value ...`` and ``store: ok <store> pending_revocations=N``.

    Raises:
        ProviderError, ProviderUnavailableError: the provider refused or is unreachable.
        StoreUnavailableError: the store is down.
    """
    facts = service.check()
    details = " ".join(f"{k}={v}" for k, v in sorted(facts.items()))
    pending = service.store.count_pending()
    return Outcome(
        (
            f"provider: ok {details}".rstrip(),
            f"store: ok {service.store!r} pending_revocations={pending}",
        )
    )


def loop(run: Callable[[], object], every: float, report: Callable[[ChatAuthError], None]) -> None:
    """``run()`` every ``every`` seconds until SIGTERM or SIGINT: the ``--loop SECONDS`` of
    the ``revoke-pending`` and ``sweep`` commands (``chatauth``, ``flask chatauth``,
    ``manage.py chatauth_...``), for a worker process instead of cron.

    A store or provider outage (:class:`~chatauth.errors.ProviderUnavailableError`,
    :class:`~chatauth.errors.StoreUnavailableError`) is handed to ``report`` and the loop goes
    on: a worker must outlive it. Any other error ends the loop. Call it from the main thread
    (signal handlers); the previous handlers are put back when it returns.
    """
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        while not stop.is_set():
            try:
                run()
            except ProviderUnavailableError as exc:
                report(exc)
            stop.wait(every)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
