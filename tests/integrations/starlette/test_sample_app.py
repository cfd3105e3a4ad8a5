"""The sample app (``sample_projects.starlette_app``) on its offline defaults and switched to
Matrix; the Matrix happy path is in tests/e2e/test_starlette_synapse.py."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from chatauth import ConfigurationError
from chatauth.stores.sqlite import SQLiteStore
from sample_projects.csrf import FIELD, token_in
from sample_projects.starlette_app import DEMO_USERS, create_app
from tests.integrations.starlette.helpers import Browser, closed_port_url
from tests.servers.deadlines import REQUEST_DEADLINE, STOP_DEADLINE
from tests.servers.processes import log_tail, start_process, stop_process

REPO = Path(__file__).resolve().parents[3]


async def form_token(client: httpx.AsyncClient, path: str = "/login") -> str:
    """The CSRF token of the form on ``path``, as a browser would submit it."""
    return token_in((await client.get(path)).text)


async def log_in(client: httpx.AsyncClient, user: str = "alice") -> None:
    form = {"username": user, "password": DEMO_USERS[user], FIELD: await form_token(client)}
    response = await client.post("/login", data=form)
    assert response.status_code == 303
    assert response.headers["location"] == "/chat"


def sample(tmp_path: Path, **settings: Any) -> Any:
    return create_app({"store": f"sqlite:///{tmp_path / 'sample.sqlite3'}", **settings})


async def test_login_chat_page_token_and_logout(
    site_for: Callable[[Any], Browser], tmp_path: Path
) -> None:
    secret = "sample-jwt-secret-" + "x" * 20
    app = sample(tmp_path, jwt_secret=secret)
    client = site_for(app)()

    login_page = (await client.get("/login")).text
    for user, password in DEMO_USERS.items():
        assert user in login_page and password in login_page
    assert (await client.get("/chat")).headers["location"] == "/login"

    form = {"username": "alice", "password": "nope", FIELD: await form_token(client)}
    bad = await client.post("/login", data=form)
    assert bad.status_code == 200 and "wrong password" in bad.text
    await log_in(client)
    page = await client.get("/chat")
    assert page.status_code == 200
    assert 'data-token-url="/chat/token"' in page.text
    assert '<script src="/static/chat.js"></script>' in page.text
    script = await client.get("/static/chat.js")
    assert script.status_code == 200 and "fetch(root.dataset.tokenUrl" in script.text

    token = await client.get("/chat/token")
    body = token.json()
    assert (body["uid"], body["provider"]) == ("user-alice", "jwt")
    assert token.headers["cache-control"] == "no-store"
    assert secret not in token.text
    for path in ("/", "/login", "/chat", "/static/chat.js"):
        text = (await client.get(path)).text
        assert secret not in text and body["token"] not in text

    assert app.state.chatauth.store.sessions("jwt", "user-alice")
    response = await client.post("/logout", data={FIELD: await form_token(client, "/chat")})
    assert (response.status_code, response.headers["location"]) == (303, "/")
    assert app.state.chatauth.store.sessions("jwt", "user-alice") == []
    assert (await client.get("/chat/token")).status_code == 401


async def test_session_cookie_is_samesite_lax_and_httponly(
    site_for: Callable[[Any], Browser], tmp_path: Path
) -> None:
    client = site_for(sample(tmp_path))()
    cookie = (await client.get("/login")).headers["set-cookie"].lower()
    assert "samesite=lax" in cookie and "httponly" in cookie


@pytest.mark.parametrize("token", [None, "", "forged", "from-another-session"])
async def test_cross_site_login_and_logout_posts_are_refused(
    site_for: Callable[[Any], Browser], tmp_path: Path, token: str | None
) -> None:
    """A POST without this session's signed token: 403, nobody logged in or out."""
    site = site_for(sample(tmp_path))
    if token == "from-another-session":
        token = await form_token(site())
    extra = {} if token is None else {FIELD: token}
    victim = site()
    await victim.get("/login")  # the victim has a session (and so a token) of their own
    attacker_form = {"username": "bob", "password": DEMO_USERS["bob"], **extra}
    assert (await victim.post("/login", data=attacker_form)).status_code == 403
    assert (await victim.get("/chat/token")).status_code == 401  # not logged in as bob

    await log_in(victim, "alice")
    assert (await victim.post("/logout", data=extra)).status_code == 403
    assert (await victim.get("/chat/token")).status_code == 200  # still logged in
    response = await victim.post("/logout", data={FIELD: await form_token(victim, "/chat")})
    assert response.status_code == 303
    assert (await victim.get("/chat/token")).status_code == 401


async def test_logging_in_as_someone_else_ends_the_previous_chat(
    site_for: Callable[[Any], Browser], tmp_path: Path
) -> None:
    app = sample(tmp_path)
    client = site_for(app)()
    await log_in(client, "alice")
    await client.get("/chat/token")
    await log_in(client, "bob")
    assert app.state.chatauth.store.sessions("jwt", "user-alice") == []
    assert (await client.get("/chat/token")).json()["uid"] == "user-bob"


async def test_logout_with_the_store_down_answers_as_usual_and_the_sweep_finishes_it(
    site_for: Callable[[Any], Browser], tmp_path: Path
) -> None:
    path = tmp_path / "sample.sqlite3"
    # A write waits 1 s (not 10) for the lock held below before the store gives up.
    app = create_app({"store": SQLiteStore(path, timeout=1.0)})
    chat = app.state.chatauth
    client = site_for(app)()
    await log_in(client, "alice")
    assert (await client.get("/chat/token")).status_code == 200
    form = {FIELD: await form_token(client, "/chat")}  # the log-out button's form
    holder = sqlite3.connect(path, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")  # another process holds the write lock: store down
        response = await client.post("/logout", data=form)
        assert (response.status_code, response.headers["location"]) == (303, "/")
        assert (await client.get("/chat/token")).status_code == 401
    finally:
        holder.rollback()
        holder.close()
    assert chat.journal is not None and chat.journal.path == path.with_name(path.name + ".ends")
    assert len(chat.store.sessions("jwt", "user-alice")) == 1  # the store missed the end
    assert (await chat.asweep()).journaled == 1
    assert chat.store.sessions("jwt", "user-alice") == []


async def test_matrix_switch_with_the_homeserver_down(
    site_for: Callable[[Any], Browser], tmp_path: Path
) -> None:
    url = closed_port_url()
    app = sample(tmp_path, provider="matrix", matrix_homeserver_url=url, matrix_jwt_secret="k" * 32)
    assert app.state.chatauth.provider.name == "matrix"
    client = site_for(app)()
    await log_in(client)
    response = await client.get("/chat/token")
    assert response.status_code == 503
    assert int(response.headers["retry-after"]) >= 1
    assert "k" * 32 not in response.text
    for path in ("/", "/chat", "/login", "/static/chat.js"):
        page = await client.get(path)
        assert page.status_code == 200, path
        assert "k" * 32 not in page.text


def test_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CHATAUTH_PROVIDER", "matrix")
    monkeypatch.setenv("CHATAUTH_MATRIX_HOMESERVER_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("CHATAUTH_MATRIX_ADMIN_TOKEN", "adm")
    monkeypatch.setenv("CHATAUTH_STORE", f"sqlite:///{tmp_path / 'env.sqlite3'}")
    provider = create_app().state.chatauth.provider
    assert (provider.name, provider.mode) == ("matrix", "admin")

    monkeypatch.setenv("CHATAUTH_TYPO", "1")
    with pytest.raises(ConfigurationError, match="TYPO"):
        create_app()


def _login_page(port: int) -> str | None:
    try:
        # A short timeout per probe: the probe is repeated until STARTUP_DEADLINE.
        response = httpx.get(f"http://127.0.0.1:{port}/login", timeout=5)
    except httpx.TransportError as exc:
        return repr(exc)
    return None if response.status_code == 200 else f"/login answered {response.status_code}"


def test_python_dash_m_serves_on_the_given_port(tmp_path: Path) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("CHATAUTH_")},
        "CHATAUTH_STORE": f"sqlite:///{tmp_path / 'cli.sqlite3'}",
    }
    log = tmp_path / "server.log"
    # --port is what is under test, so the port is ours to pick: a taken one is detected and
    # another tried (start_process) rather than binding port 0.
    proc, port = start_process(
        lambda port: [sys.executable, "-m", "sample_projects.starlette_app", "--port", str(port)],
        _login_page,
        name="python -m sample_projects.starlette_app",
        what="serve /login",
        log_path=log,
        cwd=REPO,
        env=env,
    )
    try:
        response = httpx.get(f"http://127.0.0.1:{port}/login", timeout=REQUEST_DEADLINE)
        assert response.status_code == 200
        assert "wonderland" in response.text
        proc.send_signal(signal.SIGINT)  # Ctrl-C, as a developer stops it
        assert proc.wait(STOP_DEADLINE) == 0, log_tail(log)
    finally:
        stop_process(proc)
    output = log.read_bytes()
    assert re.search(rb"provider 'jwt': http://127\.0\.0\.1:\d+/", output)
