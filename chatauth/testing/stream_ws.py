"""The Stream Chat emulator's WebSocket edge: the connect handshake the client SDK makes.

Follows what the official JavaScript SDK (npm ``stream-chat``, ``src/connection.ts``
``StableWSConnection``) sends and expects, since the handshake itself is not documented:

- The client opens ``<wsBaseURL>/connect`` (``wsBaseURL`` is the ``baseURL`` option with
  ``http`` turned into ``ws``) with the query ``json`` (``{"user_id", "user_details": {"id",
  ...}, "device"?, "client_request_id"}``), ``api_key``, ``authorization`` (the user token, no
  "Bearer"), ``stream-auth-type`` (``jwt``) and ``X-Stream-Client``.
- The connection counts as open on the first message. Accepted: a ``health.check`` event with a
  new ``connection_id`` and ``me`` (the user as upserted from ``user_details``, with the
  ``devices``, ``mutes``, ``channel_mutes`` and ``blocked_user_ids`` lists and the unread
  counters the SDK reads). Refused: ``{"error": {"code", "message", "StatusCode", "duration",
  "more_info"}}`` and then a close with code 1000, which the SDK takes as final, except for
  code 40 (token expired or revoked): then it asks its ``tokenProvider`` for a new token and
  connects again.
- The client sends ``[{"type": "health.check", "client_id"}]`` every 25 s and the edge answers
  with a ``health.check`` event.

The token is checked by :meth:`StreamEmulator.connect_user` (signature 43, claims 5, expiry and
revocation 40, a deactivated user 17, ...), the API key as the REST API checks it (2), and the
token's ``user_id`` must be the ``user_id`` the client names (5, as Stream refuses a token of
another user).

:meth:`StreamConnections.drop` ends a user's open connections with close code 1011 (an abnormal
end, as when the edge restarts or the network fails), which makes the SDK reconnect: that is how
a test makes a client present its token again.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import jwt
from starlette.websockets import WebSocket, WebSocketDisconnect

if TYPE_CHECKING:
    from chatauth.testing.stream import StreamEmulator

__all__ = ["Connection", "StreamConnections"]

#: The close code for a connection the edge ends abnormally (the SDK then reconnects).
DROPPED = 1011
#: User fields a client cannot set by connecting (only the server API can).
_SERVER_FIELDS = frozenset(
    {"id", "role", "banned", "created_at", "updated_at", "revoke_tokens_issued_before"}
)
#: Seconds :meth:`StreamConnections.drop` waits for the server's loop to close a connection.
CLOSE_DEADLINE = 10.0


def _now_rfc3339(ts: float) -> str:
    return (
        datetime.fromtimestamp(ts, timezone.utc)
        .isoformat(timespec="microseconds")
        .replace("+00:00", "Z")
    )


@dataclass
class Connection:
    """One client connection attempt, as the edge saw it.

    ``error_code`` is None for an accepted connection (then ``connection_id`` is set), else the
    Stream error code it was refused with. ``token`` is the user token it presented (tests
    compare it with the app's); ``open`` is False once it ended.
    """

    user_id: str
    token: str
    error_code: int | None
    connection_id: str | None = None
    open: bool = False

    def __repr__(self) -> str:
        # Never the token: reprs end up in test logs.
        state = "open" if self.open else "closed"
        return f"<Connection {self.user_id} {self.connection_id or self.error_code} {state}>"


class StreamConnections:
    """The ``/connect`` WebSocket endpoint of a :class:`StreamEmulator` (see the module
    docstring), and what it saw: ``attempts`` (every :class:`Connection`, in order)."""

    def __init__(self, emulator: StreamEmulator) -> None:
        self._emulator = emulator
        self._lock = threading.Lock()
        self._attempts: list[Connection] = []
        # connection_id -> (socket, the loop serving it), for drop() from another thread.
        self._live: dict[str, tuple[WebSocket, asyncio.AbstractEventLoop]] = {}

    @property
    def attempts(self) -> list[Connection]:
        """A snapshot of every connection attempt, in order."""
        with self._lock:
            return list(self._attempts)

    def drop(self, user_id: str) -> int:
        """End ``user_id``'s open connections with close code 1011; returns how many.

        Callable from any thread (the tests' own); returns once each close frame is sent.
        """
        with self._lock:
            targets = [
                (connection, *self._live[connection.connection_id])
                for connection in self._attempts
                if connection.open
                and connection.user_id == user_id
                and connection.connection_id in self._live
            ]
        for connection, websocket, loop in targets:
            connection.open = False
            asyncio.run_coroutine_threadsafe(
                websocket.close(code=DROPPED, reason="connection dropped by the emulator"), loop
            ).result(CLOSE_DEADLINE)
        return len(targets)

    async def endpoint(self, websocket: WebSocket) -> None:
        """The ``/connect`` handshake, then health checks until the client goes."""
        await websocket.accept()
        params = websocket.query_params
        token = params.get("authorization", "")
        try:
            payload = json.loads(params.get("json") or "{}")
        except ValueError:
            payload = None
        if not isinstance(payload, dict):
            payload = {}
        raw_user_id = payload.get("user_id")
        user_id = raw_user_id if isinstance(raw_user_id, str) else ""
        code, message = self._refusal(params.get("api_key"), token, user_id)
        record = Connection(user_id=user_id, token=token, error_code=code)
        with self._lock:
            self._attempts.append(record)
        if code is not None:
            status = {4: 400, 17: 403}.get(code, 401)
            error = self._emulator._error_body(status, code, message)
            await websocket.send_text(json.dumps({"error": error}))
            await websocket.close(code=1000, reason=message)
            return
        me = self._upsert(user_id, payload.get("user_details"))
        record.connection_id = secrets.token_hex(16)
        record.open = True
        with self._lock:
            self._live[record.connection_id] = (websocket, asyncio.get_running_loop())
        try:
            await self._send_health_check(websocket, record.connection_id, me)
            while True:
                message_text = await websocket.receive_text()
                if "health.check" in message_text:
                    await self._send_health_check(websocket, record.connection_id, None)
        except WebSocketDisconnect:
            pass
        finally:
            record.open = False
            with self._lock:
                self._live.pop(record.connection_id, None)

    def _refusal(self, api_key: str | None, token: str, user_id: str) -> tuple[int | None, str]:
        if api_key != self._emulator.api_key:
            return 2, f'api_key not found: "{api_key or ""}"'
        if not user_id:
            return 4, 'Connect failed with error: "user_id is a required field"'
        accepted, code = self._emulator.connect_user(token)
        if not accepted:
            code = code or 5
            reason = {
                17: "user is deactivated",
                40: "JWTAuth error: token has expired or was revoked",
                41: "JWTAuth error: token is not valid yet",
                42: "JWTAuth error: token was issued in the future",
                43: "JWTAuth error: signature is not valid",
            }.get(code, "JWTAuth error: token is not valid")
            return code, reason
        claims = jwt.decode(token, options={"verify_signature": False})
        if claims.get("user_id") != user_id:
            return 5, "JWTAuth error: the token's user_id is not the user_id of the connection"
        return None, ""

    def _upsert(self, user_id: str, details: Any) -> dict[str, Any]:
        """Connecting creates or updates the user (Stream's ``connectUser`` does); returns
        ``me`` as the health check carries it."""
        emulator = self._emulator
        fields = details if isinstance(details, dict) else {}
        now = _now_rfc3339(emulator.now())
        # The emulator's own user table, under its lock: the REST API and this edge share it.
        with emulator._lock:
            user = dict(emulator._users.get(user_id) or {})
            if not user:
                user = {"id": user_id, "role": "user", "banned": False, "created_at": now}
            for key, value in fields.items():
                if key not in _SERVER_FIELDS:
                    user[key] = value
            user.update(online=True, updated_at=now)
            emulator._users[user_id] = user
            me = emulator._resource(user_id)
        me.update(
            devices=[],
            mutes=[],
            channel_mutes=[],
            blocked_user_ids=[],
            unread_count=0,
            total_unread_count=0,
            unread_channels=0,
            unread_threads=0,
        )
        return me

    async def _send_health_check(
        self, websocket: WebSocket, connection_id: str, me: dict[str, Any] | None
    ) -> None:
        event: dict[str, Any] = {
            "type": "health.check",
            "connection_id": connection_id,
            "cid": "*",
            "created_at": _now_rfc3339(self._emulator.now()),
        }
        if me is not None:
            event["me"] = me
        await websocket.send_text(json.dumps(event))
