"""The Sendbird emulator's WebSocket: the connection and session refresh the @sendbird/chat SDK
makes, over real loopback (the browser suite drives it with the SDK itself,
tests/e2e/browser/test_sendbird_sdk.py)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, urlencode

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from chatauth.testing.sendbird import DEFAULT_API_TOKEN, DEFAULT_APP_ID, SendbirdEmulator
from tests.servers.deadlines import REQUEST_DEADLINE

# These tests are Sendbird's WebSocket client: its token rides in the connect URL
# or first frame, which the websockets client logs at DEBUG and uvicorn logs for the emulator.
pytestmark = pytest.mark.canary_allows_tokens("the tests are the emulator's WebSocket clients")


@pytest.fixture
def emulator(
    serve_emulator: Callable[[SendbirdEmulator], SendbirdEmulator],
) -> SendbirdEmulator:
    return serve_emulator(SendbirdEmulator())


def platform(emulator: SendbirdEmulator, method: str, path: str, **kwargs: Any) -> Any:
    response = httpx.request(
        method,
        emulator.base_url + path,
        headers={"Api-Token": DEFAULT_API_TOKEN},
        timeout=REQUEST_DEADLINE,
        **kwargs,
    )
    assert response.status_code == 200, response.text
    return response.json()


def session_token(emulator: SendbirdEmulator, user_id: str = "alice") -> str:
    if user_id not in emulator.users:
        platform(
            emulator,
            "POST",
            "/users",
            json={"user_id": user_id, "nickname": "Alice", "profile_url": ""},
        )
    token: str = platform(emulator, "POST", f"/users/{user_id}/token", json={})["token"]
    return token


def open_connection(
    emulator: SendbirdEmulator, user_id: str, token: str, app_id: str = DEFAULT_APP_ID
) -> ClientConnection:
    """What the SDK opens: the query it sends, the token as the subprotocol."""
    query = urlencode({"p": "JS", "ai": app_id, "user_id": user_id, "expiring_session": 1})
    subprotocol = quote(json.dumps({"token": token}, separators=(",", ":")), safe="")
    return connect(
        emulator.url.replace("http", "ws", 1) + "/?" + query,
        subprotocols=[subprotocol],
        open_timeout=REQUEST_DEADLINE,
    )


def receive(ws: ClientConnection) -> tuple[str, dict[str, Any]]:
    text = ws.recv(timeout=REQUEST_DEADLINE)
    assert isinstance(text, str) and text.endswith("\n")
    payload: dict[str, Any] = json.loads(text[4:])
    return text[:4], payload


def test_connect_answers_logi_with_the_user_and_a_session_key(emulator: SendbirdEmulator) -> None:
    token = session_token(emulator)
    with open_connection(emulator, "alice", token) as ws:
        # The SDK's WebSocket fails unless the server accepts the subprotocol it offered.
        assert ws.subprotocol is not None
        command, logi = receive(ws)
        assert command == "LOGI"
        assert logi["user_id"] == "alice"
        assert logi["nickname"] == "Alice"
        assert logi["key"]
        assert "error" not in logi
        ws.send('PING{"id":1,"active":1,"req_id":"r1"}\n')
        assert receive(ws) == ("PONG", {"id": 1, "active": 1, "req_id": "r1"})
        [connection] = emulator.connections.connections
        assert connection.tokens == [(token, True)]
        assert connection.open


@pytest.mark.parametrize("case", ["revoked", "unknown", "other app"])
def test_a_token_that_does_not_hold_gets_logi_400302_and_a_close(
    emulator: SendbirdEmulator, case: str
) -> None:
    token = session_token(emulator)
    app_id = DEFAULT_APP_ID
    if case == "revoked":
        platform(emulator, "DELETE", "/users/alice/token")
    elif case == "unknown":
        token = "not-a-session-token"
    else:
        app_id = "ANOTHER-APP"
    with open_connection(emulator, "alice", token, app_id) as ws:
        command, logi = receive(ws)
        assert command == "LOGI"
        assert logi["error"] is True
        assert logi["code"] == 400302
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=REQUEST_DEADLINE)
    assert not emulator.connections.connections[0].open


def test_expr_then_a_logi_refresh_with_a_new_token(emulator: SendbirdEmulator) -> None:
    first = session_token(emulator)
    session_token(emulator, "bob")
    with open_connection(emulator, "alice", first) as ws:
        receive(ws)
        platform(emulator, "DELETE", "/users/alice/token")
        assert emulator.connections.expire("bob") == 0
        assert emulator.connections.expire("alice") == 1
        command, expr = receive(ws)
        assert command == "EXPR"
        assert expr["reason"] == 400302
        # The SDK logs in again over the same connection; a dead token is refused first.
        ws.send(
            json.dumps({"token": first, "expiring_session": 1, "req_id": "q1"}).join(["LOGI", "\n"])
        )
        command, refused = receive(ws)
        assert (command, refused["error"], refused["code"], refused["req_id"]) == (
            "LOGI",
            True,
            400302,
            "q1",
        )
        second = session_token(emulator)
        ws.send(
            json.dumps({"token": second, "expiring_session": 1, "req_id": "q2"}).join(
                ["LOGI", "\n"]
            )
        )
        command, renewed = receive(ws)
        assert command == "LOGI"
        assert renewed["req_id"] == "q2"
        assert renewed["new_key"]
        assert "error" not in renewed
    [connection] = emulator.connections.connections
    assert connection.tokens == [(first, True), (first, False), (second, True)]
    assert "alice" in repr(connection) and first not in repr(connection)


def test_the_warm_up_fetch_is_answered_with_cors(emulator: SendbirdEmulator) -> None:
    response = httpx.get(emulator.url + "/", timeout=REQUEST_DEADLINE)
    assert response.status_code == 204
    assert response.headers["Access-Control-Allow-Origin"] == "*"
