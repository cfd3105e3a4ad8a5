"""``flask chatauth ...``: check the setup, retry queued revocations, sweep, end sessions,
update/deactivate/erase a chat user.

The work, the output lines and the exit codes are the core's (:mod:`chatauth.maintenance`),
the same as the ``chatauth`` command's and Django's ``manage.py chatauth_...``; this module
adds only where the service and the app user come from.
"""

from __future__ import annotations

from collections.abc import Callable

import click
from flask import current_app
from flask.cli import AppGroup

from chatauth import maintenance
from chatauth.errors import ChatAuthError
from chatauth.identity import ChatIdentity

from .sessions import _uses_flask_login
from .state import get_state

__all__ = ["cli"]

cli = AppGroup("chatauth", help="Chat sessions of this app's users (chatauth).")


def _echo(outcome: maintenance.Outcome) -> None:
    for line in outcome.lines:
        click.echo(line)
    if outcome.failure:
        click.echo(outcome.failure, err=True)


def _repeat(work: Callable[[], maintenance.Outcome], every: float, name: str) -> None:
    """``--loop``: run ``work`` every ``every`` seconds until SIGTERM/SIGINT, printing each
    run's lines; an outage is reported on stderr and the next run comes as planned."""

    def report(exc: ChatAuthError) -> None:
        click.echo(f"{name}: {exc}", err=True)

    maintenance.loop(lambda: _echo(work()), every, report)


LOOP = click.option(
    "--loop",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    metavar="SECONDS",
    help="Keep running, one run every SECONDS, until SIGTERM/SIGINT (a worker, not cron).",
)


def _run(work: Callable[[], maintenance.Outcome]) -> None:
    """Print the outcome's lines and exit with its code (or the error's, see
    :func:`chatauth.maintenance.exit_code_for`)."""
    try:
        outcome = work()
    except ChatAuthError as exc:
        # str(exc) is "[CODE] message" and never holds a secret.
        click.echo(f"Error: {exc}", err=True)
        raise click.exceptions.Exit(maintenance.exit_code_for(exc)) from None
    _echo(outcome)
    if outcome.exit_code:
        raise click.exceptions.Exit(outcome.exit_code)


@cli.command("check")
def check() -> None:
    """Reach the chat provider with the configured credentials and report what works."""
    state = get_state()
    service = state.service
    click.echo(
        f"token endpoint: {state.url_prefix}/token"
        if state.url_prefix
        else "token endpoint: not mounted (CHATAUTH_BLUEPRINT is false)"
    )
    if state.user_loader is not None:
        click.echo("app user from: @chatauth.user_loader")
    elif _uses_flask_login(current_app):
        click.echo("app user from: Flask-Login current_user; logout ends chat sessions")
    else:
        click.echo(
            "Error: [ERROR_CONFIG] No app user source: initialise Flask-Login's LoginManager "
            "or register @chatauth.user_loader.",
            err=True,
        )
        raise click.exceptions.Exit(maintenance.EXIT_CONFIG)
    _run(lambda: maintenance.check(service))


@cli.command("revoke-pending")
@click.option("--limit", default=100, show_default=True, help="Most queued revocations to try.")
@LOOP
def revoke_pending(limit: int, loop: float | None) -> None:
    """Retry revocations queued while the provider was down (run it from cron).

    Exits with status 1 while revocations stay queued.
    """
    service = get_state().service
    if loop is None:
        _run(lambda: maintenance.revoke_pending(service, limit))
    else:
        _repeat(lambda: maintenance.revoke_pending(service, limit), loop, "revoke-pending")


@cli.command("sweep")
@click.option(
    "--idle",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="End sessions not served for this many seconds (default: CHATAUTH_SESSION_IDLE, "
    "else PERMANENT_SESSION_LIFETIME).",
)
@click.option("--limit", default=1000, show_default=True, help="Most tokens per run.")
@LOOP
def sweep(idle: float | None, limit: int, loop: float | None) -> None:
    """End chat sessions nobody is served any more (their app session expired or was
    abandoned, or a logout met a down store), then retry queued revocations. Run it from cron.

    Exits with status 1 while revocations stay queued.
    """
    service = get_state().service
    if loop is None:
        _run(lambda: maintenance.sweep(service, idle, limit))
    else:
        _repeat(lambda: maintenance.sweep(service, idle, limit), loop, "sweep")


@cli.command("end-sessions")
@click.argument("user")
@click.option(
    "--app-user",
    is_flag=True,
    help="USER is an app user id, loaded with Flask-Login's user_loader, not a chat UID.",
)
def end_sessions(user: str, app_user: bool) -> None:
    """End every chat session of USER (a chat UID such as user-42): all devices, all browser
    sessions. Use it after a password change or to lock a user out of the chat."""
    target = _target(user, app_user)
    _run(lambda: maintenance.end_sessions(get_state().service, target))


def _target(user: str, app_user: bool) -> object:
    """The chat UID ``user``, or with ``app_user`` the app user Flask-Login loads for it."""
    if not app_user:
        return ChatIdentity(uid=user)
    manager = getattr(current_app, "login_manager", None)
    loader = getattr(manager, "user_callback", None)
    if loader is None:
        raise click.UsageError("--app-user needs Flask-Login's user_loader.")
    target = loader(user)
    if target is None:
        raise click.UsageError(f"No app user with id {user!r}.")
    return target


@cli.command("chat-user")
@click.argument("operation", type=click.Choice(["update", "deactivate", "erase"]))
@click.argument("user")
@click.option(
    "--app-user",
    is_flag=True,
    help="USER is an app user id, loaded with Flask-Login's user_loader, not a chat UID.",
)
def chat_user(operation: str, user: str, app_user: bool) -> None:
    """Update (display name, avatar), deactivate or erase the chat user of USER at the
    provider; deactivate and erase end every chat session first. update needs --app-user
    (the profile comes from the app user).

    Exits with status 1 when the provider failed and the operation was queued for
    revoke-pending, 2 when the provider has no call for it.
    """
    if operation == "update" and not app_user:
        raise click.UsageError("update needs --app-user: the profile comes from the app user.")
    target = _target(user, app_user)
    _run(lambda: maintenance.chat_user(get_state().service, operation, target))
