"""The request side through Flask's test client: current_chat, the token endpoint,
@chat_required, Flask-Login login/logout, the user_loader path, signals."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from chatauth.integrations.flask import (
    ChatAuth,
    chat_session_ended,
    chat_session_started,
    current_chat,
    end_chat_session,
    get_service,
)
from chatauth.integrations.flask import sessions as flask_sessions
from chatauth.integrations.flask.sessions import SESSION_ID_KEY
from flask import Flask, session
from flask.testing import FlaskClient

from chatauth import ChatSession
from chatauth.binding import ChatBinding, read_slot
from chatauth.stores.sqlite import SQLiteStore
from tests.servers.ports import free_port

from .apps import JWT_SECRET, USERS, CountingJWTProvider
from .conftest import AppFactory


def _provider(app: Flask) -> CountingJWTProvider:
    provider = get_service(app).provider
    assert isinstance(provider, CountingJWTProvider)
    return provider


def _login(client: FlaskClient, user: str) -> None:
    assert client.post("/login", data={"user": user}).status_code == 200


def _raw_slot(client: FlaskClient) -> Any:
    with client.session_transaction() as sess:
        return sess.get(SESSION_ID_KEY)


def _slot(client: FlaskClient) -> tuple[str, str | None] | None:
    """The browser session's ``(sid, uid)``, whatever shape the core keeps it in."""
    with client.session_transaction() as sess:
        return read_slot(sess)


def _sid(client: FlaskClient) -> str | None:
    slot = _slot(client)
    return slot[0] if slot is not None else None


@pytest.fixture
def signals(app: Flask) -> Iterator[dict[str, list[dict[str, Any]]]]:
    seen: dict[str, list[dict[str, Any]]] = {"started": [], "ended": []}

    def started(sender: Flask, **kwargs: Any) -> None:
        seen["started"].append({"sender": sender, **kwargs})

    def ended(sender: Flask, **kwargs: Any) -> None:
        seen["ended"].append({"sender": sender, **kwargs})

    with (
        chat_session_started.connected_to(started, app),
        chat_session_ended.connected_to(ended, app),
    ):
        yield seen


# -- the token endpoint ------------------------------------------------------------------------
def test_token_endpoint_answers_the_logged_in_users_session(app: Flask) -> None:
    client = app.test_client()
    _login(client, "alice")
    response = client.get("/chat/token")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    assert "Cookie" in response.headers["Vary"]
    body = response.get_json()
    assert set(body) == {"provider", "uid", "token", "expires_at", "client"}
    assert body["provider"] == "jwt"
    assert body["uid"] == "user-alice"
    assert body["expires_at"].endswith("Z")
    claims = jwt.decode(body["token"], JWT_SECRET, algorithms=["HS256"])
    assert claims["sub"] == "user-alice"
    assert JWT_SECRET not in response.get_data(as_text=True)


def test_token_endpoint_without_login_is_401_json_not_a_redirect(app: Flask) -> None:
    response = app.test_client().get("/chat/token")
    assert response.status_code == 401
    assert response.headers["Cache-Control"] == "no-store"
    assert "Location" not in response.headers
    assert response.get_json() == {
        "error": {"code": "ERROR_NOT_AUTHENTICATED", "message": "No user is logged in to the app."}
    }
    assert _provider(app).issued == 0


def test_provider_down_is_503_with_retry_after(make_app: AppFactory) -> None:
    secret = "matrix-login-secret-0123456789abcdef"
    app = make_app(
        {
            "CHATAUTH_PROVIDER": "matrix",
            "CHATAUTH_JWT_SECRET": None,
            "CHATAUTH_MATRIX_HOMESERVER_URL": f"http://127.0.0.1:{free_port()}",
            "CHATAUTH_MATRIX_JWT_SECRET": secret,
            "CHATAUTH_TIMEOUT": 1,
        }
    )
    client = app.test_client()
    _login(client, "alice")
    response = client.get("/chat/token")
    assert response.status_code == 503
    assert int(response.headers["Retry-After"]) >= 1
    assert response.headers["Cache-Control"] == "no-store"
    assert response.get_json()["error"]["code"] == "ERROR_PROVIDER_UNAVAILABLE"
    assert secret not in response.get_data(as_text=True)
    # Nothing cached the failure: the page is fine, current_chat raises again when touched.
    assert client.get("/quiet").status_code == 200


def test_same_browser_session_reuses_its_token_other_browsers_get_their_own(app: Flask) -> None:
    laptop, phone = app.test_client(), app.test_client()
    _login(laptop, "alice")
    _login(phone, "alice")
    first = laptop.get("/chat/token").get_json()["token"]
    again = laptop.get("/chat/token").get_json()["token"]
    other = phone.get("/chat/token").get_json()["token"]
    assert first == again
    assert other != first
    assert _provider(app).issued == 2
    assert _sid(laptop) != _sid(phone)


def test_a_token_is_only_for_the_user_of_the_request(app: Flask) -> None:
    client = app.test_client()
    _login(client, "bob")
    # A client cannot name another user: query strings and headers are ignored.
    body = client.get("/chat/token?uid=user-alice", headers={"X-User": "alice"}).get_json()
    assert body["uid"] == "user-bob"


# -- current_chat ----------------------------------------------------------------------------------
def test_current_chat_costs_nothing_when_untouched(
    app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = get_service(app)
    calls: list[object] = []
    # What the request binding asks the service for (get_session's checked-identity half).
    original = service._session_of

    def counting(*args: Any, **kwargs: Any) -> ChatSession:
        calls.append(args)
        return original(*args, **kwargs)

    monkeypatch.setattr(service, "_session_of", counting)
    client = app.test_client()
    _login(client, "alice")
    assert client.get("/quiet").status_code == 200
    assert calls == []
    assert _provider(app).issued == 0
    # Touched three times in one request: resolved once, cached on g.
    assert client.get("/peek").get_json() == {"uids": ["user-alice"] * 3}
    assert len(calls) == 1
    assert client.get("/peek").status_code == 200
    assert len(calls) == 2  # once per request, not once per process
    assert _provider(app).issued == 1


def test_current_chat_is_falsy_without_a_login(app: Flask) -> None:
    client = app.test_client()
    assert client.get("/peek").get_json() == {"uids": [None, None, None]}
    assert client.get("/page").get_data(as_text=True) == "no chat"
    _login(client, "carol")
    assert client.get("/page").get_data(as_text=True) == "chat as user-carol"
    with app.app_context():
        assert not current_chat  # outside a request: nothing, no error


def test_chat_required(app: Flask) -> None:
    client = app.test_client()
    response = client.get("/api")
    assert response.status_code == 401
    assert response.headers["Cache-Control"] == "no-store"
    assert response.get_json()["error"]["code"] == "ERROR_NOT_AUTHENTICATED"
    preflight = client.options("/api")  # CORS preflights carry no login
    assert preflight.get_json() == {"uid": None, "method": "OPTIONS"}
    _login(client, "bob")
    assert client.get("/api").get_json() == {"uid": "user-bob", "method": "GET"}


# -- Flask-Login login and logout ----------------------------------------------------------------
def test_logout_ends_the_chat_session_of_that_browser_only(
    app: Flask, signals: dict[str, list[dict[str, Any]]]
) -> None:
    laptop, phone = app.test_client(), app.test_client()
    _login(laptop, "alice")
    _login(phone, "alice")
    laptop_token = laptop.get("/chat/token").get_json()["token"]
    phone_token = phone.get("/chat/token").get_json()["token"]
    assert [s["session"].token.value for s in signals["started"]] == [laptop_token, phone_token]
    assert all(s["sender"] is app for s in signals["started"])

    assert laptop.post("/logout").status_code == 200
    provider = _provider(app)
    assert [t.value for t in provider.revoked] == [laptop_token]
    assert _sid(laptop) is None
    [ended] = signals["ended"]
    assert ended["sender"] is app
    assert ended["identity"].uid == "user-alice"
    assert [t.value for t in ended["tokens"]] == [laptop_token]
    assert laptop.get("/chat/token").status_code == 401
    # The phone keeps its chat session.
    assert phone.get("/chat/token").get_json()["token"] == phone_token

    _login(laptop, "alice")
    assert laptop.get("/chat/token").get_json()["token"] not in (laptop_token, phone_token)


def test_logout_with_the_provider_down_queues_the_revocation(app: Flask) -> None:
    client = app.test_client()
    _login(client, "alice")
    token = client.get("/chat/token").get_json()["token"]
    provider = _provider(app)
    provider.fail_revoke = True
    assert client.post("/logout").status_code == 200  # logout itself never fails
    store = get_service(app).store
    [pending] = store.pending(10)
    assert pending.token.value == token
    provider.fail_revoke = False
    report = get_service(app).revoke_pending()
    assert (report.revoked, report.remaining) == (1, 0)
    assert [t.value for t in provider.revoked] == [token]


def test_login_starts_a_fresh_chat_session_id(app: Flask) -> None:
    client = app.test_client()
    _login(client, "alice")
    first_sid = _sid(client)
    assert first_sid is not None  # made at login, before any chat use
    alice_token = client.get("/chat/token").get_json()["token"]
    # Another user logs in on the same browser without logging out first.
    _login(client, "bob")
    assert _sid(client) not in (None, first_sid)
    assert [t.value for t in _provider(app).revoked] == [alice_token]
    assert client.get("/chat/token").get_json()["uid"] == "user-bob"


def test_api_clients_without_a_session_get_one_token_per_user(app: Flask) -> None:
    client = app.test_client(use_cookies=False)
    headers = {"Authorization": "User carol"}
    first = client.get("/chat/token", headers=headers)
    second = client.get("/chat/token", headers=headers)
    assert first.status_code == second.status_code == 200
    assert first.get_json()["token"] == second.get_json()["token"]
    assert _provider(app).issued == 1
    assert "Set-Cookie" not in second.headers


# -- apps without Flask-Login ----------------------------------------------------------------------
def _plain_app(make_app: AppFactory, config: dict[str, Any] | None = None) -> Flask:
    ext = ChatAuth()

    @ext.user_loader
    def load() -> Any:
        return USERS.get(session.get("who", ""))

    app = make_app(config, ext=ext, flask_login=False)

    @app.post("/signin/<name>")
    def signin(name: str) -> str:
        session["who"] = name
        return "ok"

    @app.post("/signout")
    def signout() -> str:
        ended = end_chat_session()
        session.clear()
        return str(len(ended))

    return app


def test_user_loader_and_end_session_without_flask_login(make_app: AppFactory) -> None:
    app = _plain_app(make_app)
    client = app.test_client()
    assert client.get("/chat/token").status_code == 401
    client.post("/signin/bob")
    token = client.get("/chat/token").get_json()["token"]
    assert client.get("/chat/token").get_json()["token"] == token
    assert _slot(client) == (_sid(client), "user-bob")
    assert client.post("/signout").get_data(as_text=True) == "1"
    assert [t.value for t in _provider(app).revoked] == [token]
    assert client.post("/signout").get_data(as_text=True) == "0"


def test_a_user_switch_without_end_session_ends_the_old_chat_session(
    make_app: AppFactory,
) -> None:
    app = _plain_app(make_app)
    client = app.test_client()
    client.post("/signin/alice")
    alice_token = client.get("/chat/token").get_json()["token"]
    client.post("/signin/bob")  # the app forgot end_chat_session()
    assert client.get("/chat/token").get_json()["uid"] == "user-bob"
    assert [t.value for t in _provider(app).revoked] == [alice_token]


def test_no_user_source_is_a_configuration_error(make_app: AppFactory) -> None:
    app = make_app(flask_login=False)
    response = app.test_client().get("/chat/token")
    assert response.status_code == 500
    error = response.get_json()["error"]
    assert error["code"] == "ERROR_CONFIG"
    assert "user_loader" in error["message"]


def test_no_secret_key_is_a_configuration_error(make_app: AppFactory) -> None:
    app = _plain_app(make_app, {"SECRET_KEY": None})

    @app.get("/as-bob")
    def as_bob() -> Any:
        from chatauth.integrations.flask.views import token

        session_user = USERS["bob"]
        app.extensions["chatauth"].extension.user_loader(lambda: session_user)
        return token()

    response = app.test_client().get("/as-bob")
    assert response.status_code == 500
    assert "SECRET_KEY" in response.get_json()["error"]["message"]


def test_the_old_logout_helper_names_still_work_and_warn(make_app: AppFactory) -> None:
    import chatauth.integrations.flask as adapter

    with pytest.warns(DeprecationWarning, match="end_chat_session"):
        old = adapter.end_session
    assert old is end_chat_session
    app = _plain_app(make_app)
    client = app.test_client()
    client.post("/signin/bob")
    token = client.get("/chat/token").get_json()["token"]
    slot = _raw_slot(client)
    with app.test_request_context():
        session["who"] = "bob"
        session[SESSION_ID_KEY] = slot
        with pytest.warns(DeprecationWarning, match="end_chat_session"):
            ended = app.extensions["chatauth"].extension.end_session()
    assert [t.value for t in ended] == [token]


def test_a_page_that_never_uses_chat_leaves_the_session_unread(make_app: AppFactory) -> None:
    app = _plain_app(make_app)

    @app.get("/public")
    def public() -> str:
        return "the same for everyone"

    client = app.test_client()
    client.post("/signin/bob")
    assert client.get("/chat/token").status_code == 200
    # chatauth read no session here, so Flask adds no "Vary: Cookie": shared caches may keep it.
    assert "Vary" not in client.get("/public").headers


class RecordingStore(SQLiteStore):
    """A real SQLite store that records each public attribute (method) read of it."""

    def __getattribute__(self, name: str) -> Any:
        if not name.startswith("_") and name != "seen":
            with contextlib.suppress(AttributeError):  # not yet during __init__
                object.__getattribute__(self, "seen").append(name)
        return super().__getattribute__(name)

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.seen: list[str] = []


@pytest.fixture
def bindings(monkeypatch: pytest.MonkeyPatch) -> list[ChatBinding]:
    """Every :class:`ChatBinding` the Flask adapter makes from now on."""
    made: list[ChatBinding] = []

    class Counted(ChatBinding):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            #: What the session held when the binding was made.
            self.made_with = dict(self.session or {})
            made.append(self)

    monkeypatch.setattr(flask_sessions, "ChatBinding", Counted)
    return made


def test_a_page_that_never_uses_chat_makes_no_binding_and_no_store_call(
    make_app: AppFactory, tmp_path: Path, bindings: list[ChatBinding]
) -> None:
    store = RecordingStore(tmp_path / "chat.sqlite3")
    app = make_app(ext=ChatAuth(store=store))
    client = app.test_client()
    _login(client, "alice")
    assert len(bindings) == 1  # Flask-Login's login signal: the answer gets its id
    assert client.get("/chat/token").status_code == 200
    bindings.clear()
    store.seen.clear()

    for _ in range(3):
        assert client.get("/quiet").status_code == 200
    assert bindings == []
    assert store.seen == []

    # The same browser's chat page goes through both, so the counts above could see them.
    assert client.get("/peek").get_json() == {"uids": ["user-alice"] * 3}
    assert len(bindings) == 1
    assert store.seen != []


def test_the_end_of_request_step_runs_only_when_the_session_changed(
    make_app: AppFactory, bindings: list[ChatBinding], monkeypatch: pytest.MonkeyPatch
) -> None:
    finished: list[ChatBinding] = []
    original = ChatBinding.finish

    def counting(self: ChatBinding) -> None:
        finished.append(self)
        original(self)

    monkeypatch.setattr(ChatBinding, "finish", counting)
    app = _plain_app(make_app)

    @app.post("/drop-session")
    def drop_session() -> str:
        uid = current_chat.uid
        session.clear()  # without end_chat_session(): the end-of-request step must notice
        return uid

    client = app.test_client()
    client.post("/signin/bob")
    token = client.get("/chat/token").get_json()["token"]
    assert len(finished) == 1  # the id was bound in that request
    # A cached read with the session left as it was: nothing to follow up.
    assert client.get("/chat/token").get_json()["token"] == token
    assert client.get("/page").get_data(as_text=True) == "chat as user-bob"
    # The first two requests decided (an issue, then a store read, after which the process
    # keeps the session); the page read the kept session and made no binding.
    assert len(bindings) == 2
    assert len(finished) == 1

    assert client.post("/drop-session").get_data(as_text=True) == "user-bob"
    assert finished[-1] is bindings[-1]
    # That read was of the kept session too: the binding ending it was made by the
    # end-of-request step, after the clear, watching the id the read was made under.
    assert len(bindings) == 3
    assert bindings[-1].made_with == {}  # type: ignore[attr-defined]
    assert [t.value for t in _provider(app).revoked] == [token]
    assert _slot(client) is None
