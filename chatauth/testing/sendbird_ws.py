"""The Sendbird emulator's WebSocket: the client SDK's connection and session-token refresh.

Follows what the official JavaScript SDK (npm ``@sendbird/chat`` 4) sends and expects, read off
its connection code, since the protocol is not documented:

- ``SendbirdChat.init({appId, customApiHost, customWebSocketHost})`` then
  ``sb.connect(userId, token)`` opens ``<customWebSocketHost>/?p=JS&...&ai=<app id>&user_id=<id>
  &expiring_session=1...`` with the token as the WebSocket *subprotocol*,
  ``encodeURIComponent('{"token":"<session token>"}')``; the server must accept that subprotocol.
  It also fetches ``GET <customApiHost>/`` once (a warm-up whose answer it ignores).
- Frames are a four-letter command and a JSON payload, ending in a newline. The server's first
  frame is ``LOGI``: the user (``user_id``, ``nickname``, ``profile_url``, ...) and a session
  ``key``, or ``{"error": true, "code", "message"}`` (400302 session token expired, which the
  SDK's ``connect`` rejects with).
- ``EXPR {"expires_in", "reason": 400302}`` tells a connected client its session token no longer
  holds: the SDK then calls its ``SessionHandler.onSessionTokenRequired(resolve, reject)`` and
  sends ``LOGI {"token": <new token>, "expiring_session": 1, "req_id"}``; the answer is a
  ``LOGI`` with the same ``req_id`` and a ``new_key`` (then the SDK calls
  ``onSessionRefreshed``) or an error (then ``onSessionError``).
- ``PING {"id", "active", "req_id"}`` is answered with ``PONG`` and the same payload.

Tokens are the emulator's session tokens (``is_session_token_alive``: issued, not revoked, not
expired, the user active). :meth:`SendbirdConnections.expire` sends ``EXPR`` to a user's open
connections, as Sendbird does when the session token of a connection stops holding.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

if TYPE_CHECKING:
    from chatauth.testing.sendbird import SendbirdEmulator

__all__ = ["SendbirdConnection", "SendbirdConnections"]

#: Sendbird's code for a session token that does not hold (expired or revoked).
SESSION_TOKEN_EXPIRED = 400302
#: Seconds :meth:`SendbirdConnections.expire` waits for the server's loop to send a frame.
SEND_DEADLINE = 10.0


@dataclass
class SendbirdConnection:
    """One connection as the emulator saw it: the tokens it presented, in order (the one it
    connected with, then each ``LOGI`` refresh), and whether each held."""

    user_id: str
    tokens: list[tuple[str, bool]] = field(default_factory=list)
    open: bool = False

    def __repr__(self) -> str:
        # Never the tokens: reprs end up in test logs.
        state = "open" if self.open else "closed"
        return f"<SendbirdConnection {self.user_id} {len(self.tokens)} token(s) {state}>"


def _frame(command: str, payload: dict[str, Any]) -> str:
    return command + json.dumps(payload) + "\n"


class SendbirdConnections:
    """The WebSocket endpoint of a :class:`SendbirdEmulator` (see the module docstring), and
    what it saw: ``connections`` (every :class:`SendbirdConnection`, in order)."""

    def __init__(self, emulator: SendbirdEmulator) -> None:
        self._emulator = emulator
        self._lock = threading.Lock()
        self._connections: list[SendbirdConnection] = []
        self._live: list[tuple[SendbirdConnection, WebSocket, asyncio.AbstractEventLoop]] = []

    @property
    def connections(self) -> list[SendbirdConnection]:
        """A snapshot of every connection, in order."""
        with self._lock:
            return list(self._connections)

    def routes(self) -> list[BaseRoute]:
        """``/`` as the WebSocket, and ``GET /`` for the SDK's warm-up fetch."""
        return [WebSocketRoute("/", self.endpoint), Route("/", self._warm_up, methods=["GET"])]

    def expire(self, user_id: str) -> int:
        """Send ``EXPR`` (400302) to ``user_id``'s open connections; returns how many.

        Callable from any thread; returns once each frame is sent.
        """
        with self._lock:
            targets = [(w, loop) for c, w, loop in self._live if c.user_id == user_id and c.open]
        frame = _frame(
            "EXPR",
            {"expires_in": 0, "reason": SESSION_TOKEN_EXPIRED, "message": "Session expired."},
        )
        for websocket, loop in targets:
            asyncio.run_coroutine_threadsafe(websocket.send_text(frame), loop).result(SEND_DEADLINE)
        return len(targets)

    async def _warm_up(self, request: Request) -> Response:
        # The SDK reads nothing from it; the header keeps the browser from logging a CORS error.
        return Response(status_code=204, headers={"Access-Control-Allow-Origin": "*"})

    def _holds(self, user_id: str, token: str) -> bool:
        return self._emulator.is_session_token_alive(user_id, token)

    def _logi(self, user_id: str, request_id: str | None = None) -> dict[str, Any]:
        user = self._emulator.users[user_id]
        key = secrets.token_hex(20)
        payload: dict[str, Any] = {
            "user_id": user_id,
            "nickname": user.get("nickname", ""),
            "profile_url": user.get("profile_url", ""),
            "is_active": user.get("is_active", True),
            "key": key,
            "new_key": key,
            "login_ts": int(self._emulator.now() * 1000),
            "ping_interval": 15,
            "pong_timeout": 5,
        }
        if request_id is not None:
            payload["req_id"] = request_id
        return payload

    @staticmethod
    def _refusal(request_id: str | None = None) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "error": True,
            "code": SESSION_TOKEN_EXPIRED,
            "message": "Session token expired.",
        }
        if request_id is not None:
            payload["req_id"] = request_id
        return payload

    async def endpoint(self, websocket: WebSocket) -> None:
        """Accept the SDK's subprotocol, answer ``LOGI``, then ``PING`` and ``LOGI`` refreshes."""
        offered = websocket.scope.get("subprotocols") or []
        await websocket.accept(subprotocol=offered[0] if offered else None)
        token = ""
        if offered:
            try:
                parsed = json.loads(unquote(offered[0]))
            except ValueError:
                parsed = None
            if isinstance(parsed, dict) and isinstance(parsed.get("token"), str):
                token = parsed["token"]
        params = websocket.query_params
        user_id = params.get("user_id", "")
        holds = params.get("ai") == self._emulator.app_id and self._holds(user_id, token)
        record = SendbirdConnection(user_id=user_id, tokens=[(token, holds)], open=holds)
        with self._lock:
            self._connections.append(record)
        if not holds:
            await websocket.send_text(_frame("LOGI", self._refusal()))
            await websocket.close()
            return
        loop = asyncio.get_running_loop()
        entry = (record, websocket, loop)
        with self._lock:
            self._live.append(entry)
        try:
            await websocket.send_text(_frame("LOGI", self._logi(user_id)))
            while True:
                await self._answer(websocket, record, await websocket.receive_text())
        except WebSocketDisconnect:
            pass
        finally:
            record.open = False
            with self._lock:
                self._live.remove(entry)

    async def _answer(self, websocket: WebSocket, record: SendbirdConnection, text: str) -> None:
        command, body = text[:4], text[4:]
        try:
            payload = json.loads(body) if body.strip() else {}
        except ValueError:
            return
        if not isinstance(payload, dict):
            return
        if command == "PING":
            await websocket.send_text(_frame("PONG", payload))
        elif command == "LOGI":
            token = payload.get("token")
            request_id = payload.get("req_id")
            request_id = request_id if isinstance(request_id, str) else None
            holds = isinstance(token, str) and self._holds(record.user_id, token)
            record.tokens.append((token if isinstance(token, str) else "", holds))
            answer = self._logi(record.user_id, request_id) if holds else None
            await websocket.send_text(_frame("LOGI", answer or self._refusal(request_id)))
