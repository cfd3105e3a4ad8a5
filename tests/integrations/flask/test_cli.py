"""``flask chatauth check | revoke-pending | sweep | end-sessions`` through Flask's CLI runner."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from chatauth.integrations.flask import ChatAuth, get_service
from flask import Flask
from flask.testing import FlaskClient

from chatauth.testing.clock import ManualClock
from tests.servers.ports import free_port

from .apps import JWT_SECRET, CountingJWTProvider
from .conftest import AppFactory


def _token_for(client: FlaskClient, user: str) -> str:
    assert client.post("/login", data={"user": user}).status_code == 200
    token: str = client.get("/chat/token").get_json()["token"]
    return token


def test_check_reports_the_setup(app: Flask) -> None:
    result = app.test_cli_runner().invoke(args=["chatauth", "check"])
    assert result.exit_code == 0, result.output
    assert "provider: ok provider=jwt" in result.output
    assert "token endpoint: /chat/token" in result.output
    assert "Flask-Login" in result.output
    assert "pending_revocations=0" in result.output
    assert JWT_SECRET not in result.output


def test_check_fails_when_the_provider_is_unreachable(make_app: AppFactory) -> None:
    secret = "matrix-admin-token-never-printed"
    app = make_app(
        {
            "CHATAUTH_PROVIDER": "matrix",
            "CHATAUTH_JWT_SECRET": None,
            "CHATAUTH_MATRIX_HOMESERVER_URL": f"http://127.0.0.1:{free_port()}",
            "CHATAUTH_MATRIX_ADMIN_TOKEN": secret,
            "CHATAUTH_TIMEOUT": 1,
        }
    )
    result = app.test_cli_runner().invoke(args=["chatauth", "check"])
    assert result.exit_code == 3  # chatauth.maintenance: provider unreachable
    assert "ERROR_PROVIDER_UNAVAILABLE" in result.output
    assert secret not in result.output


def test_check_fails_without_a_user_source(make_app: AppFactory) -> None:
    app = make_app(flask_login=False)
    result = app.test_cli_runner().invoke(args=["chatauth", "check"])
    assert result.exit_code == 2  # chatauth.maintenance: configuration error
    assert "user_loader" in result.output


def test_revoke_pending_retries_queued_revocations(app: Flask) -> None:
    client = app.test_client()
    token = _token_for(client, "alice")
    provider = get_service(app).provider
    assert isinstance(provider, CountingJWTProvider)
    provider.fail_revoke = True
    client.post("/logout")
    runner = app.test_cli_runner()

    failed = runner.invoke(args=["chatauth", "revoke-pending"])
    assert failed.exit_code == 1
    assert "revoke-pending: revoked=0 failed=1 remaining=1" in failed.output

    provider.fail_revoke = False
    done = runner.invoke(args=["chatauth", "revoke-pending", "--limit", "5"])
    assert done.exit_code == 0, done.output
    assert "revoke-pending: revoked=1 failed=0 remaining=0" in done.output
    assert [t.value for t in provider.revoked] == [token]


def test_sweep_ends_an_abandoned_session_after_the_apps_session_age(
    make_app: AppFactory,
) -> None:
    clock = ManualClock()
    app = make_app({"PERMANENT_SESSION_LIFETIME": timedelta(minutes=10)}, ext=ChatAuth(clock=clock))
    service = get_service(app)
    assert service.session_idle == timedelta(minutes=10)  # the sweep's idle: the session age
    token = _token_for(app.test_client(), "alice")  # then the browser is gone, no logout
    runner = app.test_cli_runner()

    clock.advance(timedelta(minutes=9))
    kept = runner.invoke(args=["chatauth", "sweep"])
    assert kept.exit_code == 0, kept.output
    assert "sweep: swept=0 revoked=0 queued=0 journaled=0" in kept.output

    clock.advance(timedelta(minutes=2))
    done = runner.invoke(args=["chatauth", "sweep"])
    assert done.exit_code == 0, done.output
    assert "sweep: swept=1 revoked=1 queued=0 journaled=0" in done.output
    assert "revoke-pending: revoked=0 failed=0 remaining=0" in done.output
    provider = service.provider
    assert isinstance(provider, CountingJWTProvider)
    assert [t.value for t in provider.revoked] == [token]
    assert service.store.sessions() == []


def test_the_journal_defaults_to_the_instance_folder(make_app: AppFactory, tmp_path: Path) -> None:
    app = make_app({"CHATAUTH_STORE": "sqlite:///chatauth.sqlite3"})
    journal = get_service(app).journal
    assert journal is not None
    assert journal.path == Path(app.instance_path) / "chatauth.sqlite3.ends"
    off = make_app({"CHATAUTH_STORE": "sqlite:///chatauth.sqlite3", "CHATAUTH_JOURNAL": False})
    assert get_service(off).journal is None


def test_end_sessions_ends_every_browser_session_of_a_user(app: Flask) -> None:
    laptop, phone, other = app.test_client(), app.test_client(), app.test_client()
    tokens = {_token_for(laptop, "alice"), _token_for(phone, "alice")}
    bob = _token_for(other, "bob")
    result = app.test_cli_runner().invoke(args=["chatauth", "end-sessions", "user-alice"])
    assert result.exit_code == 0, result.output
    assert "end-sessions: uid=user-alice ended=2 queued_revocations=0" in result.output
    provider = get_service(app).provider
    assert isinstance(provider, CountingJWTProvider)
    assert {t.value for t in provider.revoked} == tokens
    # Both browsers get a fresh token next time; bob is untouched.
    assert _token_for(laptop, "alice") not in tokens
    assert other.get("/chat/token").get_json()["token"] == bob


def test_end_sessions_by_app_user_id(app: Flask) -> None:
    client = app.test_client()
    token = _token_for(client, "carol")
    runner = app.test_cli_runner()
    result = runner.invoke(args=["chatauth", "end-sessions", "--app-user", "carol"])
    assert result.exit_code == 0, result.output
    assert "end-sessions: uid=user-carol ended=1 queued_revocations=0" in result.output
    provider = get_service(app).provider
    assert isinstance(provider, CountingJWTProvider)
    assert [t.value for t in provider.revoked] == [token]
    missing = runner.invoke(args=["chatauth", "end-sessions", "--app-user", "nobody"])
    assert missing.exit_code == 2
    assert "No app user" in missing.output


def test_end_sessions_refuses_an_invalid_uid(app: Flask) -> None:
    result = app.test_cli_runner().invoke(args=["chatauth", "end-sessions", "user alice"])
    assert result.exit_code == 2
    assert "ERROR_UID_WITH_SPACE" in result.output
