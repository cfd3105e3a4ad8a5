"""The sample app (``sample_projects/flask_app``): the test client, ``flask run``, and the
end-to-end flow against a real Synapse through waitress."""

from __future__ import annotations

import contextlib
import secrets
import stat
import sys
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from chatauth.integrations.flask import get_service
from flask import Flask
from flask.testing import FlaskClient

from sample_projects.csrf import FIELD, CSRFTokens, token_in
from sample_projects.flask_app import DEMO_PASSWORDS, create_app
from tests.servers.deadlines import REQUEST_DEADLINE
from tests.servers.synapse import SynapseServer

from .servers import fifty_at_once, serve_on_free_port, waitress_command

FACTORY = "sample_projects.flask_app:create_app"


@pytest.fixture
def sample(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Flask:
    for name in ("CHATAUTH_PROVIDER", "CHATAUTH_JWT_SECRET", "FLASK_SECRET_KEY"):
        monkeypatch.delenv(name, raising=False)
    app = create_app({"INSTANCE_PATH": str(tmp_path / "instance"), "TESTING": True})
    yield app
    app.extensions["chatauth"].close()


def _form_token(client: FlaskClient | httpx.Client, path: str = "/login") -> str:
    """The CSRF token of the form on ``path``, as a browser would submit it."""
    page = client.get(path)
    return token_in(page.get_data(as_text=True) if hasattr(page, "get_data") else page.text)


def _login(client: FlaskClient, user: str, password: str | None = None) -> Any:
    form = {"username": user, "password": password or DEMO_PASSWORDS[user]}
    return client.post("/login", data={**form, FIELD: _form_token(client)})


def _logout(client: FlaskClient | httpx.Client) -> Any:
    return client.post("/logout", data={FIELD: _form_token(client, "/")})


def test_login_page_shows_the_demo_users(sample: Flask) -> None:
    page = sample.test_client().get("/login").get_data(as_text=True)
    for user, password in DEMO_PASSWORDS.items():
        assert f"<code>{user}</code>" in page
        assert f"<code>{password}</code>" in page


def test_login_chat_page_token_logout(sample: Flask) -> None:
    client = sample.test_client()
    assert client.get("/").status_code == 302  # Flask-Login's login_view for pages
    wrong = _login(client, "alice", "not-her-password")
    assert "wrong password" in wrong.get_data(as_text=True)
    assert _login(client, "alice").headers["Location"] == "/"
    page = client.get("/").get_data(as_text=True)
    assert 'data-token-url="/chat/token"' in page
    assert '<script src="/shared/chat.js">' in page  # the script all three samples share
    script = client.get("/shared/chat.js")
    assert script.status_code == 200
    assert "javascript" in script.content_type
    script.close()
    assert "signed in as Alice" in page

    response = client.get("/chat/token")
    assert response.status_code == 200
    body = response.get_json()
    assert body["uid"] == "user-alice"
    secret = sample.config["CHATAUTH_JWT_SECRET"]
    claims = jwt.decode(body["token"], secret, algorithms=["HS256"])
    assert (claims["sub"], claims["name"]) == ("user-alice", "Alice")

    # No secret in any page: not the app's keys, and not the token outside its endpoint.
    pages = [client.get(path).get_data(as_text=True) for path in ("/", "/login")]
    pages.append(sample.test_client().get("/login").get_data(as_text=True))
    for text in pages:
        assert secret not in text
        assert sample.config["SECRET_KEY"] not in text
        assert body["token"] not in text
    assert secret not in response.get_data(as_text=True)

    assert _logout(client).headers["Location"] == "/login"
    assert client.get("/chat/token").status_code == 401


def test_dev_secrets_and_store_stay_in_the_instance_folder(tmp_path: Path, sample: Flask) -> None:
    instance = tmp_path / "instance"
    again = create_app({"INSTANCE_PATH": str(instance)})
    try:
        assert again.config["SECRET_KEY"] == sample.config["SECRET_KEY"]
        assert again.config["CHATAUTH_JWT_SECRET"] == sample.config["CHATAUTH_JWT_SECRET"]
        assert len(sample.config["CHATAUTH_JWT_SECRET"]) >= 32
        secrets_file = instance / "dev-secrets.json"
        assert stat.S_IMODE(secrets_file.stat().st_mode) == 0o600
        store = get_service(again).store
        assert store.path == instance / "chatauth.sqlite3"  # type: ignore[attr-defined]
    finally:
        again.extensions["chatauth"].close()


def test_environment_switches_to_matrix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHATAUTH_PROVIDER", "matrix")
    monkeypatch.setenv("CHATAUTH_MATRIX_HOMESERVER_URL", "http://127.0.0.1:8008")
    monkeypatch.setenv("CHATAUTH_MATRIX_ADMIN_TOKEN", "admin-token-from-the-environment")
    app = create_app({"INSTANCE_PATH": str(tmp_path)})
    try:
        provider = get_service(app).provider
        assert provider.name == "matrix"
        assert provider.mode == "admin"  # type: ignore[attr-defined]
        assert "CHATAUTH_JWT_SECRET" not in app.config
    finally:
        app.extensions["chatauth"].close()


def test_flask_run_serves_the_sample_from_the_repository_root(tmp_path: Path) -> None:
    def command(port: int) -> list[str]:
        return [
            sys.executable,
            "-m",
            "flask",
            "--app",
            "sample_projects.flask_app",
            "run",
            "--port",
            str(port),
        ]

    env = {
        "FLASK_SECRET_KEY": secrets.token_urlsafe(24),
        "CHATAUTH_JWT_SECRET": secrets.token_urlsafe(32),
        "CHATAUTH_STORE": f"sqlite:///{tmp_path / 'chat.sqlite3'}",
    }
    with (
        serve_on_free_port(command, env, tmp_path / "log") as url,
        httpx.Client(base_url=url, timeout=REQUEST_DEADLINE) as client,
    ):
        assert "wonderland" in client.get("/login").text
        form = {"username": "bob", "password": "builder", FIELD: _form_token(client)}
        assert client.post("/login", data=form).is_redirect
        assert client.get("/chat/token").json()["uid"] == "user-bob"


# -- against a real Synapse ---------------------------------------------------------------------
def _synapse_env(synapse: SynapseServer, tmp_path: Path, prefix: str) -> dict[str, str]:
    return {
        "CHATAUTH_PROVIDER": "matrix",
        "CHATAUTH_MATRIX_HOMESERVER_URL": synapse.base_url,
        "CHATAUTH_MATRIX_SERVER_NAME": synapse.server_name,
        "CHATAUTH_MATRIX_JWT_SECRET": synapse.jwt_secret,
        "CHATAUTH_MATRIX_JWT_ALGORITHM": synapse.jwt_algorithm,
        "CHATAUTH_UID_PREFIX": prefix,
        "CHATAUTH_STORE": f"sqlite:///{tmp_path / 'chat.sqlite3'}",
        "FLASK_SECRET_KEY": secrets.token_urlsafe(24),
    }


def _browser(url: str, user: str) -> httpx.Client:
    client = httpx.Client(base_url=url, timeout=REQUEST_DEADLINE)
    form = {"username": user, "password": DEMO_PASSWORDS[user], FIELD: _form_token(client)}
    response = client.post("/login", data=form)
    assert response.status_code == 302, response.text
    return client


@pytest.mark.synapse
def test_synapse_login_token_works_logout_kills_it(synapse: SynapseServer, tmp_path: Path) -> None:
    prefix = f"flask{secrets.token_hex(3)}-"
    env = _synapse_env(synapse, tmp_path, prefix)
    log = tmp_path / "log"
    with (
        serve_on_free_port(lambda port: waitress_command(FACTORY, port), env, log) as url,
        contextlib.closing(_browser(url, "alice")) as browser,
    ):
        page = browser.get("/")
        assert page.status_code == 200
        response = browser.get("/chat/token")
        assert response.status_code == 200, response.text
        assert response.headers["Cache-Control"] == "no-store"
        body = response.json()
        user_id = f"@{prefix}alice:{synapse.server_name}"
        assert (body["provider"], body["uid"]) == ("matrix", f"{prefix}alice")
        assert body["client"]["homeserver_url"] == synapse.base_url
        assert body["client"]["user_id"] == user_id
        assert body["client"]["device_id"]
        token = body["token"]
        for text in (page.text, response.text):
            assert synapse.jwt_secret not in text
            assert synapse.admin_token not in text

        whoami = synapse.whoami(token)
        assert whoami.status_code == 200
        assert whoami.json()["user_id"] == user_id
        room = synapse.create_room(token)
        assert synapse.send_message(token, room, "hello from Flask").status_code == 200

        assert _logout(browser).status_code == 302
        dead = synapse.whoami(token)
        assert dead.status_code == 401
        assert dead.json()["errcode"] == "M_UNKNOWN_TOKEN"
        assert browser.get("/chat/token").status_code == 401
    assert synapse.jwt_secret not in (tmp_path / "log").read_text()


@pytest.mark.synapse
def test_synapse_fifty_first_requests_make_one_device(
    synapse: SynapseServer, tmp_path: Path
) -> None:
    prefix = f"flask{secrets.token_hex(3)}-"
    env = _synapse_env(synapse, tmp_path, prefix)
    with (
        serve_on_free_port(
            lambda port: waitress_command(FACTORY, port, threads=50), env, tmp_path / "log"
        ) as url,
        contextlib.closing(_browser(url, "bob")) as browser,
    ):
        responses = fifty_at_once(url, browser.cookies, "/chat/token")
    assert {r.status_code for r in responses} == {200}, [r.text for r in responses[:3]]
    tokens = {r.json()["token"] for r in responses}
    assert len(tokens) == 1
    user_id = f"@{prefix}bob:{synapse.server_name}"
    devices = httpx.get(
        synapse.url(f"/_synapse/admin/v2/users/{user_id}/devices"),
        headers={"Authorization": f"Bearer {synapse.admin_token}"},
        timeout=REQUEST_DEADLINE,
    )
    assert devices.status_code == 200, devices.text
    assert devices.json()["total"] == 1  # one JWT login, so one issued token
    assert synapse.whoami(tokens.pop()).status_code == 200


# -- CSRF and the session cookie ----------------------------------------------------------------


def test_session_cookie_is_samesite_lax(sample: Flask) -> None:
    client = sample.test_client()
    response = client.get("/login")
    cookie = response.headers["Set-Cookie"]
    assert "SameSite=Lax" in cookie and "HttpOnly" in cookie


@pytest.mark.parametrize("token", [None, "", "forged", "from-another-session"])
def test_cross_site_login_and_logout_posts_are_refused(sample: Flask, token: str | None) -> None:
    """A POST without this session's signed token: 403, nobody logged in or out."""
    if token == "from-another-session":
        token = _form_token(sample.test_client())
    extra = {} if token is None else {FIELD: token}
    attacker_form = {"username": "bob", "password": DEMO_PASSWORDS["bob"], **extra}
    victim = sample.test_client()
    victim.get("/login")  # the victim has a session (and so a token) of their own
    assert victim.post("/login", data=attacker_form).status_code == 403
    assert victim.get("/chat/token").status_code == 401  # not logged in as bob

    assert _login(victim, "alice").status_code == 302
    assert victim.post("/logout", data=extra).status_code == 403
    assert victim.get("/chat/token").status_code == 200  # still logged in
    assert _logout(victim).status_code == 302
    assert victim.get("/chat/token").status_code == 401


def test_an_expired_form_is_refused(sample: Flask) -> None:
    client = sample.test_client()
    token = _form_token(client)
    with client.session_transaction() as session:
        assert CSRFTokens(sample.config["SECRET_KEY"]).is_valid(session, token)
        assert not CSRFTokens(sample.config["SECRET_KEY"], max_age=-1).is_valid(session, token)
