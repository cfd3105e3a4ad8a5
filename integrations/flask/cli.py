"""``flask chatauth ...``: check the setup, retry queued revocations, end a user's sessions."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup

from chatauth.errors import ChatAuthError
from chatauth.identity import ChatIdentity

from .sessions import _uses_flask_login
from .state import get_state

__all__ = ["cli"]

cli = AppGroup("chatauth", help="Chat sessions of this app's users (chatauth).")


def _fail(exc: ChatAuthError) -> click.ClickException:
    # str(exc) is "[CODE] message" and never holds a secret.
    return click.ClickException(str(exc))


@cli.command("check")
def check() -> None:
    """Reach the chat provider with the configured credentials and report what works."""
    state = get_state()
    service = state.service
    click.echo(f"provider: {service.provider.name}")
    click.echo(f"store: {service.store.name}")
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
        raise click.ClickException(
            "[ERROR_CONFIG] No app user source: initialise Flask-Login's LoginManager or "
            "register @chatauth.user_loader."
        )
    try:
        facts = service.check()
    except ChatAuthError as exc:
        raise _fail(exc) from None
    for key, value in facts.items():
        if key != "provider":  # printed above
            click.echo(f"{key}: {value}")
    click.echo(f"pending revocations: {service.store.count_pending()}")
    click.echo("OK")


@cli.command("revoke-pending")
@click.option("--limit", default=100, show_default=True, help="Most queued revocations to try.")
def revoke_pending(limit: int) -> None:
    """Retry revocations queued while the provider was down (run it from cron).

    Exits with status 1 when some failed again (they stay queued).
    """
    try:
        report = get_state().service.revoke_pending(limit)
    except ChatAuthError as exc:
        raise _fail(exc) from None
    click.echo(f"revoked: {report.revoked}, failed: {report.failed}, remaining: {report.remaining}")
    if report.failed:
        raise click.exceptions.Exit(1)


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
    service = get_state().service
    try:
        if app_user:
            manager = getattr(current_app, "login_manager", None)
            loader = getattr(manager, "user_callback", None)
            if loader is None:
                raise click.ClickException("--app-user needs Flask-Login's user_loader.")
            target = loader(user)
            if target is None:
                raise click.ClickException(f"No app user with id {user!r}.")
            identity = service.identity_for(target)
        else:
            identity = service.identity_for(ChatIdentity(uid=user))
        ended = service.end_all_sessions(identity)
    except ChatAuthError as exc:
        raise _fail(exc) from None
    click.echo(f"ended {len(ended)} chat session(s) of {identity.uid}")
