"""The extension object: init_app, config validation, several apps, closing."""

from __future__ import annotations

import gc
import subprocess
import sys
import weakref
from pathlib import Path

import jwt
import pytest
from chatauth.integrations.flask import ChatAuth, ChatAuthState, get_service
from flask import Flask

import chatauth
from chatauth import ConfigurationError
from chatauth.stores.sqlite import SQLiteStore

from .apps import JWT_SECRET, USERS, CountingJWTProvider, base_config
from .conftest import AppFactory


def _login(client: object, user: str) -> None:
    assert client.post("/login", data={"user": user}).status_code == 200  # type: ignore[attr-defined]


def test_late_init_app_registers_state_not_the_app(make_app: AppFactory) -> None:
    ext = ChatAuth()
    app = make_app(ext=ext)
    state = app.extensions["chatauth"]
    assert isinstance(state, ChatAuthState)
    assert isinstance(state.service, chatauth.ChatAuth)
    assert state.extension is ext
    # The extension keeps no app (Flask's extension guide): nothing of it refers to one.
    assert not any(isinstance(value, Flask) for value in vars(ext).values())
    with app.app_context():
        assert get_service() is state.service
        assert ext.service is state.service
    assert get_service(app) is state.service
    assert "/chat/token" in {rule.rule for rule in app.url_map.iter_rules()}
    assert "chatauth" in app.cli.commands


def test_constructor_with_app(tmp_path: Path) -> None:
    app = Flask(__name__, instance_path=str(tmp_path))
    app.config.update(base_config())
    ChatAuth(app)
    try:
        assert isinstance(app.extensions["chatauth"].service.provider, CountingJWTProvider)
    finally:
        app.extensions["chatauth"].close()


def test_init_app_twice_is_refused(app: Flask) -> None:
    with pytest.raises(RuntimeError, match="already initialised"):
        ChatAuth().init_app(app)


def test_uninitialised_app_says_how_to_fix() -> None:
    app = Flask(__name__)
    with pytest.raises(RuntimeError, match=r"ChatAuth\(app\)"):
        get_service(app)


def test_one_extension_serves_several_apps(make_app: AppFactory) -> None:
    ext = ChatAuth()
    first = make_app(ext=ext)
    second = make_app({"CHATAUTH_JWT_SECRET": "another-secret-of-app-two-0123456789ab"}, ext=ext)
    assert get_service(first) is not get_service(second)
    tokens = []
    for app, secret in ((first, JWT_SECRET), (second, "another-secret-of-app-two-0123456789ab")):
        client = app.test_client()
        _login(client, "alice")
        body = client.get("/chat/token").get_json()
        claims = jwt.decode(body["token"], secret, algorithms=["HS256"])
        assert claims["sub"] == "user-alice"
        tokens.append(body["token"])
    assert tokens[0] != tokens[1]
    assert get_service(first).provider.issued == 1  # type: ignore[attr-defined]
    assert get_service(second).provider.issued == 1  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("config", "key", "code"),
    [
        ({"CHATAUTH_PROVIDER": None}, "CHATAUTH_PROVIDER", "ERROR_CONFIG"),
        ({"CHATAUTH_PROVIDER": "no-such-chat"}, "CHATAUTH_PROVIDER", "ERROR_CONFIG"),
        ({"CHATAUTH_JWT_SECRET": ""}, "CHATAUTH_JWT_SECRET", "ERROR_API_KEY_NOT_FOUND"),
        ({"CHATAUTH_TOKEN_TLL": 60}, "CHATAUTH_TOKEN_TLL", "ERROR_CONFIG"),
        ({"CHATAUTH_TOKEN_TTL": "soon"}, "CHATAUTH_TOKEN_TTL", "ERROR_CONFIG"),
        ({"CHATAUTH_STORE": "mysql://db"}, "CHATAUTH_STORE", "ERROR_CONFIG"),
        ({"CHATAUTH_URL_PREFIX": "chat"}, "CHATAUTH_URL_PREFIX", "ERROR_CONFIG"),
        ({"CHATAUTH_BLUEPRINT": "no"}, "CHATAUTH_BLUEPRINT", "ERROR_CONFIG"),
    ],
)
def test_bad_config_fails_at_init_app_naming_the_flask_key(
    make_app: AppFactory, config: dict[str, object], key: str, code: str
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        make_app(config)
    assert caught.value.setting == key
    assert caught.value.code == code
    assert key in str(caught.value)


def test_config_errors_never_show_secret_values(make_app: AppFactory) -> None:
    with pytest.raises(ConfigurationError) as caught:
        make_app({"CHATAUTH_JWT_ALGORITHM": "RS256", "CHATAUTH_JWT_PRIVATE_KEY": "not-a-pem"})
    assert caught.value.setting == "CHATAUTH_JWT_PRIVATE_KEY"
    assert "not-a-pem" not in str(caught.value)
    assert JWT_SECRET not in str(caught.value) + repr(caught.value)


def test_url_prefix_and_no_blueprint(make_app: AppFactory) -> None:
    app = make_app({"CHATAUTH_URL_PREFIX": "/api/v1/chat/"})
    client = app.test_client()
    _login(client, "alice")
    assert client.get("/api/v1/chat/token").status_code == 200
    assert client.get("/chat/token").status_code == 404
    with app.test_request_context():
        from flask import url_for

        assert url_for("chatauth.token") == "/api/v1/chat/token"

    bare = make_app({"CHATAUTH_BLUEPRINT": False})
    assert not any(rule.endpoint.startswith("chatauth.") for rule in bare.url_map.iter_rules())
    assert bare.extensions["chatauth"].url_prefix is None


def test_relative_sqlite_store_lives_in_the_instance_folder(make_app: AppFactory) -> None:
    default = make_app({"CHATAUTH_STORE": None})
    store = get_service(default).store
    assert isinstance(store, SQLiteStore)
    assert store.path == Path(default.instance_path) / "chatauth.sqlite3"
    named = make_app({"CHATAUTH_STORE": "sqlite:///chat/tokens.db"})
    named_store = get_service(named).store
    assert isinstance(named_store, SQLiteStore)
    assert named_store.path == Path(named.instance_path) / "chat" / "tokens.db"
    # A token issued through the app lands in that file.
    client = default.test_client()
    _login(client, "bob")
    assert client.get("/chat/token").status_code == 200
    assert store.path.stat().st_size > 0


def test_absolute_sqlite_store_is_kept(make_app: AppFactory, tmp_path: Path) -> None:
    target = tmp_path / "elsewhere.db"
    app = make_app({"CHATAUTH_STORE": f"sqlite:///{target}"})
    store = get_service(app).store
    assert isinstance(store, SQLiteStore)
    assert store.path == target


def test_close_closes_the_client_once(app: Flask) -> None:
    state = app.extensions["chatauth"]
    client = state.service.http_client
    assert not client.is_closed
    state.close()
    assert client.is_closed
    assert state.closed
    state.close()  # idempotent


def test_a_dropped_app_closes_its_client(tmp_path: Path) -> None:
    # Flask has no app-teardown event: the weakref finalizer closes the client when the
    # app goes away, and the hooks must not keep the app alive.
    app = Flask(__name__, instance_path=str(tmp_path))
    app.config.update(base_config())
    ChatAuth(app)
    service = get_service(app)
    client = service.http_client
    app_ref = weakref.ref(app)
    del app
    gc.collect()
    assert app_ref() is None
    assert client.is_closed


def test_the_client_is_created_at_init_app_and_shared(app: Flask) -> None:
    service = get_service(app)
    # Made while one thread runs, so request threads never race to create (and leak) one.
    assert service._client is not None
    assert service.http_client is service.http_client
    assert USERS  # the demo users exist for the request tests


def test_import_without_flask_names_the_extra() -> None:
    code = (
        "import sys\n"
        "sys.modules['flask'] = None  # as if Flask were not installed\n"
        "try:\n"
        "    import chatauth.integrations.flask\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert "pip install 'chatauth-middleware[flask]'" in result.stdout
