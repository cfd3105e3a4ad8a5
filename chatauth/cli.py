"""The ``chatauth`` command: maintenance jobs for apps that run chatauth.

::

    chatauth [--settings MODULE:ATTR] COMMAND ...

    chatauth check                      reach the provider and the store, report what works
    chatauth revoke-pending [--limit N] [--loop SECONDS]
                                        retry revocations queued while the provider was down
    chatauth sweep [--idle SECONDS] [--limit N] [--loop SECONDS]
                                        end chat sessions nobody is served any more (idle
                                        app sessions, tokens past refresh), then revoke-pending
    chatauth end-sessions UID           end every chat session of one chat user
    chatauth chat-user OPERATION UID [--name NAME] [--avatar URL]
                                        update (name, avatar), deactivate or erase the chat
                                        user at the provider (deactivate and erase end every
                                        chat session first)
    chatauth generate-key               print a new STORE_ENCRYPTION_KEY

Settings come from ``CHATAUTH_*`` environment variables (``CHATAUTH_PROVIDER=matrix``,
``CHATAUTH_STORE=redis://...``, the same keys as Flask's ``CHATAUTH_*`` config), or from
``--settings module:attr`` naming a settings dict, a :class:`~chatauth.service.ChatAuth`, or a
callable returning either. The current directory is importable, as with ``flask`` and
``gunicorn``.

Exit codes:

== ==================================================================================
0  done (``revoke-pending``, ``sweep``: nothing left queued; ``--loop``: stopped by a signal)
1  ``revoke-pending`` or ``sweep`` left revocations queued (the provider still fails for them);
   ``chat-user``: the provider failed and the operation was queued
2  usage or configuration error (bad arguments, missing or malformed settings)
3  the provider or the store is unreachable, or the provider refused the credentials
== ==================================================================================

Output is counts and names, never a token or a secret. Log lines (``chatauth`` logger) go to
stderr.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, TextIO

from chatauth import maintenance
from chatauth.config import from_settings, normalize_settings
from chatauth.errors import ChatAuthError, ConfigurationError
from chatauth.identity import ChatIdentity, import_string
from chatauth.maintenance import EXIT_CONFIG, EXIT_OK, EXIT_PENDING, EXIT_UNAVAILABLE, Outcome
from chatauth.service import ChatAuth

__all__ = ["EXIT_CONFIG", "EXIT_OK", "EXIT_PENDING", "EXIT_UNAVAILABLE", "main"]

ENV_PREFIX = "CHATAUTH_"


def load_chatauth(settings: str | None, environ: dict[str, str] | None = None) -> ChatAuth:
    """The :class:`ChatAuth` the command works on.

    Args:
        settings: ``"module:attr"`` naming a settings dict, a ``ChatAuth`` or a callable
            returning either; ``None`` to read ``CHATAUTH_*`` environment variables.
        environ: the environment (default ``os.environ``).

    Raises:
        ConfigurationError: nothing configured, or the settings are invalid.
    """
    if settings:
        if os.getcwd() not in sys.path:
            sys.path.insert(0, os.getcwd())
        try:
            target: Any = import_string(settings)
        except ConfigurationError as exc:
            # A command-line argument, not a secret: the message may name it.
            raise ConfigurationError(
                f"--settings {settings} cannot be imported: {exc.message}", setting="--settings"
            ) from exc.__cause__
        if callable(target) and not isinstance(target, ChatAuth):
            target = target()
        if isinstance(target, ChatAuth):
            return target
        if isinstance(target, dict):
            return from_settings(target)
        raise ConfigurationError(
            f"--settings {settings} must name a dict of settings, a ChatAuth, or a callable "
            "returning one.",
            setting="--settings",
        )
    values = normalize_settings(os.environ if environ is None else environ, ENV_PREFIX)
    if not values:
        raise ConfigurationError(
            "No settings: set CHATAUTH_PROVIDER (and the provider's CHATAUTH_* keys) in the "
            "environment, or pass --settings module:attr.",
            setting="PROVIDER",
        )
    return from_settings(values)


def _print(outcome: Outcome, out: TextIO) -> int:
    for line in outcome.lines:
        print(line, file=out, flush=True)
    if outcome.failure:
        print(f"chatauth: {outcome.failure}", file=sys.stderr, flush=True)
    return outcome.exit_code


def _revoke_pending(chat: ChatAuth, args: argparse.Namespace, out: TextIO) -> int:
    if args.loop is None:
        return _print(maintenance.revoke_pending(chat, args.limit), out)
    _loop(
        lambda: _print(maintenance.revoke_pending(chat, args.limit), out),
        args.loop,
        "revoke-pending",
    )
    return EXIT_OK


def _sweep(chat: ChatAuth, args: argparse.Namespace, out: TextIO) -> int:
    if args.loop is None:
        return _print(maintenance.sweep(chat, args.idle, args.limit), out)
    _loop(lambda: _print(maintenance.sweep(chat, args.idle, args.limit), out), args.loop, "sweep")
    return EXIT_OK


def _loop(run: Callable[[], object], every: float, name: str) -> None:
    """``run()`` every ``every`` seconds until SIGTERM or SIGINT (:func:`maintenance.loop`)."""

    def report(exc: ChatAuthError) -> None:
        # A worker must outlive a store or provider outage: report and try again.
        print(f"{name}: {exc}", file=sys.stderr, flush=True)

    maintenance.loop(run, every, report)


def _check(chat: ChatAuth, args: argparse.Namespace, out: TextIO) -> int:
    return _print(maintenance.check(chat), out)


def _end_sessions(chat: ChatAuth, args: argparse.Namespace, out: TextIO) -> int:
    return _print(maintenance.end_sessions(chat, ChatIdentity(args.uid)), out)


def _chat_user(chat: ChatAuth, args: argparse.Namespace, out: TextIO) -> int:
    identity = ChatIdentity(args.uid, name=args.name, avatar=args.avatar)
    return _print(maintenance.chat_user(chat, args.operation, identity), out)


def _generate_key(args: argparse.Namespace, out: TextIO) -> int:
    try:
        from chatauth.stores.crypto import generate_key
    except ImportError as exc:
        raise ConfigurationError(str(exc), setting="STORE_ENCRYPTION_KEY") from None
    print(generate_key(), file=out)
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for documentation tools and tests)."""
    parser = argparse.ArgumentParser(
        prog="chatauth",
        description="Maintenance jobs for chatauth: revocations, the sweep, checks, ending "
        "sessions.",
        epilog="Settings: CHATAUTH_* environment variables, or --settings module:attr. "
        "Exit codes: 0 ok, 1 revocations still queued, 2 configuration error, "
        "3 provider or store unavailable.",
    )
    parser.add_argument(
        "--settings",
        metavar="MODULE:ATTR",
        help="a settings dict, a ChatAuth, or a callable returning one "
        "(default: CHATAUTH_* environment variables)",
    )
    parser.add_argument(
        "--log-level",
        default="INFO",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="level of the chatauth log lines on stderr (default INFO)",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    commands.add_parser("check", help="reach the provider and the store, report what works")

    revoke = commands.add_parser(
        "revoke-pending", help="retry revocations queued while the provider was down"
    )
    revoke.add_argument(
        "--limit", type=_positive_int, default=100, help="most entries per run (default 100)"
    )
    revoke.add_argument(
        "--loop",
        type=_positive_float,
        metavar="SECONDS",
        help="keep running, one run every SECONDS, until SIGTERM/SIGINT",
    )

    sweep = commands.add_parser(
        "sweep",
        help="end chat sessions nobody is served any more, then retry queued revocations",
    )
    sweep.add_argument(
        "--idle",
        type=_positive_float,
        metavar="SECONDS",
        help="end sessions not served for this long (default: the SESSION_IDLE setting, "
        "14 days unless set; give it your app's session age)",
    )
    sweep.add_argument(
        "--limit", type=_positive_int, default=1000, help="most tokens per run (default 1000)"
    )
    sweep.add_argument(
        "--loop",
        type=_positive_float,
        metavar="SECONDS",
        help="keep running, one run every SECONDS, until SIGTERM/SIGINT",
    )

    end = commands.add_parser("end-sessions", help="end every chat session of one chat user")
    end.add_argument("uid", help="the chat UID (as the provider knows it)")

    user = commands.add_parser(
        "chat-user",
        help="update, deactivate or erase one chat user at the provider",
    )
    user.add_argument("operation", choices=["update", "deactivate", "erase"])
    user.add_argument("uid", help="the chat UID (as the provider knows it)")
    user.add_argument("--name", help="update: the display name to push")
    user.add_argument("--avatar", metavar="URL", help="update: the avatar URL to push")

    commands.add_parser("generate-key", help="print a new STORE_ENCRYPTION_KEY (Fernet)")
    return parser


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError("must be a positive integer")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError("must be a positive number of seconds")
    return value


def _log_to_stderr(level: str) -> None:
    # Only chatauth's own logger: the root logger at INFO would let httpx log request URLs,
    # and some providers' revocation URLs carry the token (CometChat's DELETE .../{authToken}).
    logger = logging.getLogger("chatauth")
    logger.handlers = [h for h in logger.handlers if not getattr(h, "chatauth_cli", False)]
    handler = logging.StreamHandler(sys.stderr)
    handler.chatauth_cli = True  # type: ignore[attr-defined]
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(getattr(logging, level))
    logger.propagate = False


Command = Callable[[ChatAuth, argparse.Namespace, TextIO], int]
COMMANDS: dict[str, Command] = {
    "check": _check,
    "revoke-pending": _revoke_pending,
    "sweep": _sweep,
    "end-sessions": _end_sessions,
    "chat-user": _chat_user,
}


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None) -> int:
    """Run the ``chatauth`` command; returns the exit code (see the module docstring)."""
    args = build_parser().parse_args(argv)
    out = out or sys.stdout
    _log_to_stderr(args.log_level)
    try:
        if args.command == "generate-key":
            return _generate_key(args, out)
        chat = load_chatauth(args.settings)
        try:
            return COMMANDS[args.command](chat, args, out)
        finally:
            chat.close()
    except ChatAuthError as exc:  # one rule: chatauth.maintenance.exit_code_for
        print(f"chatauth {args.command}: {exc}", file=sys.stderr)
        return maintenance.exit_code_for(exc)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
