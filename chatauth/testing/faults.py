"""Fault injection shared by every provider emulator.

Each emulator owns one :class:`Faults` (``emulator.faults``) and one :class:`CallLog`
(``emulator.calls``). Faults are queued, first in first out, and each one is consumed by the
next request(s) it matches::

    emulator.faults.status(429, retry_after=2)          # next request: 429 + Retry-After: 2
    emulator.faults.status(503, times=2, path="/v3/users")
    emulator.faults.latency(0.5)                        # delayed, then answered normally
    emulator.faults.timeout()                           # no answer until the client gives up
    emulator.faults.trickle(interval=0.2)               # the answer, one byte every 0.2 s
    emulator.faults.reset()                             # TCP reset, no response at all
    gate = emulator.faults.hold(path="/v3/users")       # parked until gate.release()
    emulator.faults.clear()

A request takes the first queued fault whose ``path`` prefix and ``method`` match it; faults
that do not match stay queued. ``status`` faults answer with the provider's own error body
(each emulator supplies a renderer), so a client sees what the real cloud sends when it is
rate limited or down.

The injector is a pure ASGI middleware (:class:`FaultInjectionMiddleware`). The emulators do not
add it with ``Middleware(...)``: :class:`EmulatorApp` runs it *outside* Starlette's own
``ServerErrorMiddleware``, because a reset needs the server's own ``send`` callable to reach the
socket (see :meth:`FaultInjectionMiddleware._reset`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import struct
import threading
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from starlette.applications import Starlette
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "Call",
    "CallLog",
    "EmulatorApp",
    "ErrorRenderer",
    "FaultInjectionMiddleware",
    "Faults",
    "Hold",
    "generic_error",
]

#: ``(status, retry_after) -> (json_body, extra_headers)``: how a provider words an error.
ErrorRenderer = Callable[[int, float | None], tuple[Any, dict[str, str]]]

#: How long a ``timeout()`` fault hangs when the client never hangs up.
DEFAULT_HANG_SECONDS = 30.0


class Call(NamedTuple):
    """One request the emulator received: ``(method, path)``; compares equal to a plain tuple."""

    method: str
    path: str


class CallLog(list[Call]):
    """Every request an emulator received, in arrival order, faulted ones included.

    A plain list of :class:`Call`, so ``calls.count(("POST", "/v3/users"))`` works; the helpers
    below cover prefixes. Requests a fault answered (or reset) are recorded too: the server did
    receive them, and a test counting retries needs to see them.
    """

    def count(self, value: object) -> int:
        """How many calls equal ``value``; a plain ``(method, path)`` tuple is fine."""
        return sum(1 for call in list(self) if call == value)

    def matching(
        self, method: str | None = None, path: str | None = None, *, prefix: bool = False
    ) -> list[Call]:
        """The calls with this method (any if None) and path (exact, or a prefix)."""
        found: list[Call] = []
        for call in list(self):
            if method is not None and call.method != method.upper():
                continue
            if path is not None:
                if prefix and not call.path.startswith(path):
                    continue
                if not prefix and call.path != path:
                    continue
            found.append(call)
        return found

    def count_of(
        self, method: str | None = None, path: str | None = None, *, prefix: bool = False
    ) -> int:
        """How many calls :meth:`matching` would return."""
        return len(self.matching(method, path, prefix=prefix))


class Hold:
    """The gate of a :meth:`Faults.hold` fault: requests it takes wait until :meth:`release`.

    Thread-safe: the test thread waits and releases while the server's event loop parks the
    requests. Released for good: a request that reaches the gate afterwards goes straight on.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._released = False
        self._entered = threading.Event()
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []
        #: How many requests have reached the gate so far.
        self.count = 0

    def __repr__(self) -> str:
        state = "released" if self.released else "closed"
        return f"<Hold {state} count={self.count}>"

    @property
    def released(self) -> bool:
        with self._lock:
            return self._released

    def wait_entered(self, timeout: float | None = None) -> bool:
        """Block until a request is parked at the gate; False if ``timeout`` seconds pass."""
        return self._entered.wait(timeout)

    def release(self) -> None:
        """Let every parked request (and every later one) go on to the app."""
        with self._lock:
            self._released = True
            waiters, self._waiters = self._waiters, []
        for loop, event in waiters:
            # The loop may already be closed when the server stopped first.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(event.set)

    async def wait(self, seconds: float) -> None:
        """Server side: park the current request until released, at most ``seconds``."""
        event = asyncio.Event()
        with self._lock:
            self.count += 1
            if self._released:
                return
            self._waiters.append((asyncio.get_running_loop(), event))
        self._entered.set()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(event.wait(), seconds)


@dataclass
class _Fault:
    kind: str
    remaining: int
    path: str | None
    method: str | None
    seconds: float = 0.0
    status: int = 0
    retry_after: float | None = None
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    gate: Hold | None = None
    chunk: int = 0  # trickle: bytes per send

    def matches(self, method: str, path: str) -> bool:
        if self.method is not None and self.method != method:
            return False
        return self.path is None or path.startswith(self.path)


def generic_error(status: int, retry_after: float | None) -> tuple[Any, dict[str, str]]:
    """Fallback renderer for apps that do not supply their provider's error shape."""
    return {"error": _reason(status), "status": status}, {}


def _reason(status: int) -> str:
    return {
        429: "Too Many Requests",
        500: "Internal Server Error",
        502: "Bad Gateway",
        503: "Service Unavailable",
        504: "Gateway Timeout",
    }.get(status, "Error")


def format_retry_after(value: float) -> str:
    """``Retry-After`` is whole seconds (RFC 9110); fractions are kept so tests can stay fast."""
    if float(value).is_integer():
        return str(int(value))
    return repr(float(value))


class Faults:
    """The fault queue and call log of one emulator (thread-safe: tests queue faults from the
    test thread while the server thread consumes them).

    Every method takes ``times`` (how many matching requests the fault applies to, default 1),
    ``path`` (only requests whose path starts with it) and ``method`` (only that HTTP method).
    """

    def __init__(self, render_error: ErrorRenderer | None = None) -> None:
        self._render_error: ErrorRenderer = render_error or generic_error
        self._queue: deque[_Fault] = deque()
        self._lock = threading.Lock()
        self.calls = CallLog()

    def __repr__(self) -> str:
        return f"<Faults pending={self.pending}>"

    # -- queueing -------------------------------------------------------------------------

    def latency(
        self, seconds: float, *, times: int = 1, path: str | None = None, method: str | None = None
    ) -> None:
        """Delay the next matching request(s) by ``seconds``, then answer normally."""
        if seconds < 0:
            raise ValueError("latency must be >= 0 seconds")
        self._push(_Fault("latency", times, path, _upper(method), seconds=seconds))

    def trickle(
        self,
        *,
        interval: float = 0.2,
        chunk: int = 1,
        times: int = 1,
        path: str | None = None,
        method: str | None = None,
    ) -> None:
        """Answer normally, but send the body ``chunk`` bytes every ``interval`` seconds.

        Each read the client makes gets data well within any read timeout, so only a deadline
        on the whole operation stops it: a body of ``n`` bytes takes ``n / chunk * interval``
        seconds. The trickle stops when the client hangs up.
        """
        if interval <= 0 or chunk < 1:
            raise ValueError("trickle needs interval > 0 and chunk >= 1")
        self._push(_Fault("trickle", times, path, _upper(method), seconds=interval, chunk=chunk))

    def timeout(
        self,
        *,
        times: int = 1,
        path: str | None = None,
        method: str | None = None,
        hang: float = DEFAULT_HANG_SECONDS,
    ) -> None:
        """Send nothing until the client disconnects (its read timeout fires) or ``hang``
        seconds pass; after that the request is answered normally, like a very slow server."""
        self._push(_Fault("timeout", times, path, _upper(method), seconds=hang))

    def hold(
        self,
        *,
        times: int = 1,
        path: str | None = None,
        method: str | None = None,
        hang: float = DEFAULT_HANG_SECONDS,
        then_status: int | None = None,
    ) -> Hold:
        """Park the next matching request(s) until the test calls ``release()`` on the returned
        :class:`Hold` (or ``hang`` seconds pass), then answer normally, or with ``then_status``
        and the provider's error body for it when given.

        For tests that must *see* a request in flight before letting it finish (what happens
        to the requests that arrive meanwhile), instead of hoping a latency is long enough;
        ``then_status`` makes the held request fail exactly when the test says, instead of
        waiting for the client's read timeout.
        """
        if then_status is not None and not 100 <= then_status <= 599:
            raise ValueError(f"not an HTTP status: {then_status}")
        gate = Hold()
        self._push(
            _Fault(
                "hold",
                times,
                path,
                _upper(method),
                seconds=hang,
                gate=gate,
                status=then_status or 0,
            )
        )
        return gate

    def status(
        self,
        status: int,
        *,
        retry_after: float | None = None,
        times: int = 1,
        path: str | None = None,
        method: str | None = None,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Answer with ``status`` and the provider's error body for it (or ``body``).

        ``retry_after`` adds a ``Retry-After`` header (seconds); without it there is none, so a
        test controls exactly what the client sees. 429 gets the body (and extra rate-limit
        headers) the provider sends when rate limited; 5xx its internal-error body.
        """
        if not 100 <= status <= 599:
            raise ValueError(f"not an HTTP status: {status}")
        self._push(
            _Fault(
                "status",
                times,
                path,
                _upper(method),
                status=status,
                retry_after=retry_after,
                body=body,
                headers=dict(headers or {}),
            )
        )

    def reset(self, *, times: int = 1, path: str | None = None, method: str | None = None) -> None:
        """Drop the connection with a TCP reset before any response byte is sent.

        An httpx client sees a transport error (``httpx.ReadError`` or
        ``httpx.RemoteProtocolError``, both ``httpx.TransportError``).
        """
        self._push(_Fault("reset", times, path, _upper(method)))

    def clear(self) -> None:
        """Forget every queued fault (the call log is kept: ``calls.clear()`` empties it)."""
        with self._lock:
            self._queue.clear()

    @property
    def pending(self) -> int:
        """How many faulted requests are still queued."""
        with self._lock:
            return sum(f.remaining for f in self._queue)

    # -- consumption (server side) --------------------------------------------------------

    def _push(self, fault: _Fault) -> None:
        if fault.remaining < 1:
            raise ValueError("times must be >= 1")
        with self._lock:
            self._queue.append(fault)

    def take(self, method: str, path: str) -> _Fault | None:
        """Consume one use of the first queued fault matching this request, if any."""
        with self._lock:
            for fault in self._queue:
                if fault.matches(method, path):
                    fault.remaining -= 1
                    if fault.remaining == 0:
                        self._queue.remove(fault)
                    return fault
        return None

    def render(self, fault: _Fault) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
        """Status, body and headers of a ``status`` fault's response."""
        body, extra = self._render_error(fault.status, fault.retry_after)
        if fault.body is not None:
            body = fault.body
        headers = {"content-type": "application/json"}
        headers.update({k.lower(): v for k, v in extra.items()})
        if fault.retry_after is not None:
            headers["retry-after"] = format_retry_after(fault.retry_after)
        headers.update({k.lower(): v for k, v in fault.headers.items()})
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        headers["content-length"] = str(len(raw))
        return fault.status, raw, [(k.encode(), v.encode()) for k, v in headers.items()]


def _upper(method: str | None) -> str | None:
    return method.upper() if method else None


class FaultInjectionMiddleware:
    """Pure ASGI middleware: records every HTTP request in ``faults.calls`` and applies the
    queued fault, if one matches, before the wrapped app sees the request."""

    def __init__(self, app: ASGIApp, faults: Faults) -> None:
        self.app = app
        self.faults = faults

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method: str = scope["method"]
        path: str = scope["path"]
        self.faults.calls.append(Call(method, path))
        fault = self.faults.take(method, path)
        if fault is None:
            await self.app(scope, receive, send)
        elif fault.kind == "latency":
            await asyncio.sleep(fault.seconds)
            await self.app(scope, receive, send)
        elif fault.kind == "hold":
            assert fault.gate is not None
            await fault.gate.wait(fault.seconds)
            if not fault.status:
                await self.app(scope, receive, send)
            else:
                await self._answer(send, fault)
        elif fault.kind == "timeout":
            replay = await self._hang(receive, fault.seconds)
            if replay is not None:
                await self.app(scope, replay, send)
        elif fault.kind == "trickle":
            await self._trickle(scope, receive, send, fault.seconds, fault.chunk)
        elif fault.kind == "status":
            await self._answer(send, fault)
        else:
            await self._reset(receive, send)

    async def _answer(self, send: Send, fault: _Fault) -> None:
        status, body, headers = self.faults.render(fault)
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body, "more_body": False})

    async def _trickle(
        self, scope: Scope, receive: Receive, send: Send, interval: float, chunk: int
    ) -> None:
        """Run the app, then send its answer's body ``chunk`` bytes per ``interval`` seconds."""
        messages: list[Message] = []

        async def capture(message: Message) -> None:
            messages.append(message)

        await self.app(scope, receive, capture)
        start = next(m for m in messages if m["type"] == "http.response.start")
        body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")
        await send(start)
        gone = asyncio.Event()

        async def watch() -> None:
            # The app has read the request: the next message is the client hanging up.
            while (await receive())["type"] != "http.disconnect":
                pass
            gone.set()

        watcher = asyncio.ensure_future(watch())
        try:
            for offset in range(0, len(body), chunk):
                await send(
                    {
                        "type": "http.response.body",
                        "body": body[offset : offset + chunk],
                        "more_body": True,
                    }
                )
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(gone.wait(), interval)
                if gone.is_set():
                    return
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher

    @staticmethod
    async def _hang(receive: Receive, seconds: float) -> Receive | None:
        """Wait for the client to hang up; None if it did, else a ``receive`` that replays the
        body messages read meanwhile (so the app can still read the request body)."""
        buffered: list[Message] = []

        async def until_disconnect() -> None:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return
                buffered.append(message)

        try:
            await asyncio.wait_for(until_disconnect(), seconds)
        except asyncio.TimeoutError:
            pass
        else:
            return None

        async def replay() -> Message:
            if buffered:
                return buffered.pop(0)
            return await receive()

        return replay

    @staticmethod
    async def _reset(receive: Receive, send: Send) -> None:
        # ASGI gives an app no handle on the socket. uvicorn's ``send`` is a bound method of its
        # request cycle, which holds the asyncio transport: with SO_LINGER 0, aborting it sends
        # a RST, exactly what a crashed load balancer looks like to the client.
        transport = getattr(getattr(send, "__self__", None), "transport", None)
        if transport is None or not hasattr(transport, "abort"):
            await _truncated_response(send)
            return
        sock = transport.get_extra_info("socket")
        if sock is not None:
            # Where SO_LINGER is refused, a plain FIN still gives "server disconnected".
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()
        # Let the server notice the loss before we return, so it does not try to answer a
        # request whose connection is gone (and log that the app sent no response).
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(_drain_until_disconnect(receive), 2.0)


async def _drain_until_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def _truncated_response(send: Send) -> None:
    # Fallback when the server is not uvicorn: promise a body and never finish it, so the
    # server closes the connection and the client sees an incomplete response.
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json"), (b"content-length", b"64")],
        }
    )
    await send({"type": "http.response.body", "body": b"{", "more_body": True})


class EmulatorApp(Starlette):
    """A Starlette app whose requests pass :class:`FaultInjectionMiddleware` first, outside
    Starlette's own middleware stack (see the module docstring for why)."""

    def __init__(self, *, faults: Faults, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.faults = faults
        self._with_faults = FaultInjectionMiddleware(self._starlette_call, faults)

    async def _starlette_call(self, scope: Scope, receive: Receive, send: Send) -> None:
        await super().__call__(scope, receive, send)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._with_faults(scope, receive, send)
