"""ChatKitty's session check through the Flask blueprint: the emulator's chat function POSTs
to the app's verify URL over real HTTP, before and after the app logout."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
from chatauth.integrations.flask import get_service
from flask import Flask
from werkzeug.serving import make_server

from chatauth.testing.chatkitty import (
    DEFAULT_API_KEY,
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    ChatKittyEmulator,
)
from tests.integrations.flask.apps import build_app

#: The verify URL takes JSON only (415 otherwise).
JSON = {"Content-Type": "application/json"}


@contextmanager
def served(app: Flask) -> Iterator[str]:
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(10)
        server.server_close()


def test_verify_url_allows_the_live_session_and_refuses_it_after_logout(
    chatkitty_emulator: ChatKittyEmulator,
) -> None:
    assert chatkitty_emulator.url is not None
    app = build_app(
        {
            "CHATAUTH_PROVIDER": "chatkitty",
            "CHATAUTH_JWT_SECRET": None,
            "CHATAUTH_CHATKITTY_API_KEY": DEFAULT_API_KEY,
            "CHATAUTH_CHATKITTY_CLIENT_ID": DEFAULT_CLIENT_ID,
            "CHATAUTH_CHATKITTY_CLIENT_SECRET": DEFAULT_CLIENT_SECRET,
            "CHATAUTH_CHATKITTY_BASE_URL": chatkitty_emulator.base_url,
            "CHATAUTH_CHATKITTY_AUTH_URL": chatkitty_emulator.url + "/oauth/token",
        }
    )
    with served(app) as url, httpx.Client(base_url=url) as browser:
        verify_url = url + "/chat/chatkitty/verify"
        browser.post("/login", data={"user": "alice"}).raise_for_status()
        body = browser.get("/chat/token").json()
        params = {"token": body["token"]}
        assert chatkitty_emulator.start_session(body["uid"], params, verify_url)
        assert not chatkitty_emulator.start_session("user-mallory", params, verify_url)
        browser.post("/logout").raise_for_status()
        assert not chatkitty_emulator.start_session(body["uid"], params, verify_url)
        assert httpx.post(verify_url, content=b"not json", headers=JSON).status_code == 400
    with app.app_context():
        get_service().close()


def test_verify_url_is_404_for_other_providers() -> None:
    app = build_app()
    answer = app.test_client().post("/chat/chatkitty/verify", json={"username": "x"})
    assert answer.status_code == 404
