"""The Stream emulator's WebSocket ``/connect``: the handshake the stream-chat client SDK makes,
over real loopback (the browser suite drives the same endpoint with the official SDK itself,
tests/e2e/browser/test_stream_chat_sdk.py)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import jwt
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from chatauth.testing.stream import DEFAULT_API_KEY, DEFAULT_API_SECRET, StreamEmulator
from tests.servers.deadlines import REQUEST_DEADLINE
from tests.testing._clock import T0, Clock

# These tests are stream-chat's WebSocket client: its token rides in the connect URL
# or first frame, which the websockets client logs at DEBUG and uvicorn logs for the emulator.
pytestmark = pytest.mark.canary_allows_tokens("the tests are the emulator's WebSocket clients")


def user_token(user_id: str, secret: str = DEFAULT_API_SECRET, **claims: Any) -> str:
    return jwt.encode({**claims, "user_id": user_id}, secret, algorithm="HS256")


def connect_url(user_id: str, token: str, api_key: str = DEFAULT_API_KEY, **details: Any) -> str:
    """The URL stream-chat's ``StableWSConnection._buildUrl`` makes."""
    payload = {
        "user_id": user_id,
        "user_details": {"id": user_id, **details},
        "client_request_id": "req-1",
    }
    query = {
        "json": json.dumps(payload),
        "api_key": api_key,
        "authorization": token,
        "stream-auth-type": "jwt",
        "X-Stream-Client": "stream-chat-js-test",
    }
    return "/connect?" + urlencode(query)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def emulator(
    clock: Clock, serve_emulator: Callable[[StreamEmulator], StreamEmulator]
) -> StreamEmulator:
    return serve_emulator(StreamEmulator(clock=clock))


class Client:
    """Opens ``/connect`` on the served emulator (``ws://``, as the SDK derives it)."""

    def __init__(self, emulator: StreamEmulator) -> None:
        self.base = emulator.url.replace("http", "ws", 1)

    def websocket_connect(self, path: str) -> ClientConnection:
        return connect(self.base + path, open_timeout=REQUEST_DEADLINE)


@pytest.fixture
def client(emulator: StreamEmulator) -> Client:
    return Client(emulator)


def receive_json(ws: ClientConnection) -> Any:
    return json.loads(ws.recv(timeout=REQUEST_DEADLINE))


def test_accepted_connection_answers_a_health_check_with_me(
    client: Client, emulator: StreamEmulator
) -> None:
    token = user_token("alice", iat=int(T0) - 10, exp=int(T0) + 3600)
    with client.websocket_connect(connect_url("alice", token, name="Alice")) as ws:
        first = receive_json(ws)
        assert first["type"] == "health.check"
        assert first["connection_id"]
        me = first["me"]
        assert me["id"] == "alice"
        assert me["name"] == "Alice"
        assert me["role"] == "user"
        # The lists the SDK reads from ``me`` without checking they are there.
        assert me["mutes"] == me["channel_mutes"] == me["devices"] == []
        # Connecting upserted the user.
        assert emulator.users["alice"]["name"] == "Alice"
        # The client's ping is answered on the same connection.
        ws.send(json.dumps([{"type": "health.check", "client_id": "c1"}]))
        pong = receive_json(ws)
        assert pong["type"] == "health.check"
        assert pong["connection_id"] == first["connection_id"]
        assert "me" not in pong
        [attempt] = emulator.connections.attempts
        assert attempt.open and attempt.error_code is None
        assert attempt.connection_id == first["connection_id"]


def test_a_connecting_client_cannot_promote_itself(
    client: Client, emulator: StreamEmulator
) -> None:
    token = user_token("alice", iat=int(T0))
    with client.websocket_connect(connect_url("alice", token, role="admin")) as ws:
        assert receive_json(ws)["me"]["role"] == "user"


def refusal(client: Client, url: str) -> tuple[dict[str, Any], int]:
    """The error event the edge sends, and the close code that follows it."""
    with client.websocket_connect(url) as ws:
        event = receive_json(ws)
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=REQUEST_DEADLINE)
    assert closed.value.rcvd is not None
    return event["error"], closed.value.rcvd.code


def test_a_revoked_token_is_refused_with_code_40_then_a_clean_close(
    client: Client, emulator: StreamEmulator, clock: Clock
) -> None:
    token = user_token("alice", iat=int(T0) - 10)
    with emulator._lock:
        emulator._revoked_before["alice"] = T0 - 5
    error, close_code = refusal(client, connect_url("alice", token))
    # 40 is the one code on which the SDK asks its tokenProvider for a new token.
    assert error["code"] == 40
    assert error["StatusCode"] == 401
    assert close_code == 1000
    [attempt] = emulator.connections.attempts
    assert attempt.error_code == 40 and attempt.connection_id is None
    # A token minted after the cut-off connects.
    fresh = user_token("alice", iat=int(T0))
    with client.websocket_connect(connect_url("alice", fresh)) as ws:
        assert receive_json(ws)["type"] == "health.check"


@pytest.mark.parametrize(
    ("user_id", "token", "api_key", "code"),
    [
        ("alice", user_token("alice", secret="another-secret-of-32-bytes-at-least"), None, 43),
        ("alice", user_token("bob"), None, 5),
        ("alice", user_token("alice", exp=int(T0) - 1), None, 40),
        ("alice", user_token("alice"), "wrong-key", 2),
        ("", user_token("alice"), None, 4),
        ("alice", "not-a-jwt", None, 5),
    ],
)
def test_refusals(client: Client, user_id: str, token: str, api_key: str | None, code: int) -> None:
    url = connect_url(user_id, token, api_key or DEFAULT_API_KEY)
    error, close_code = refusal(client, url)
    assert error["code"] == code
    assert close_code == 1000
    assert token not in json.dumps(error)


def test_a_deactivated_user_cannot_connect(client: Client, emulator: StreamEmulator) -> None:
    with emulator._lock:
        emulator.deactivated.add("alice")
    error, close_code = refusal(client, connect_url("alice", user_token("alice")))
    assert (error["code"], error["StatusCode"], close_code) == (17, 403, 1000)


def test_drop_ends_the_users_connections_abnormally(
    client: Client, emulator: StreamEmulator
) -> None:
    alice, bob = user_token("alice"), user_token("bob")
    with (
        client.websocket_connect(connect_url("alice", alice)) as ws_alice,
        client.websocket_connect(connect_url("bob", bob)) as ws_bob,
    ):
        receive_json(ws_alice)
        receive_json(ws_bob)
        assert emulator.connections.drop("alice") == 1
        with pytest.raises(ConnectionClosed) as closed:
            ws_alice.recv(timeout=REQUEST_DEADLINE)
        # 1011, not 1000: the SDK reconnects after it instead of giving up.
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 1011
        # Bob's connection is untouched.
        ws_bob.send(json.dumps([{"type": "health.check"}]))
        assert receive_json(ws_bob)["type"] == "health.check"
    assert emulator.connections.drop("alice") == 0
    assert "ey" not in repr(emulator.connections.attempts)
