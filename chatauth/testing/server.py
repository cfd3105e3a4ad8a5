"""Serving an ASGI app over real HTTP during tests, and the base class of every emulator.

``serve(app)`` runs uvicorn in a background thread on ``127.0.0.1`` and a port the kernel picks
(the socket is bound to port 0 before uvicorn gets it, so no other process can take the port in
between), waits until it accepts connections, and stops the server when the ``with`` block
ends::

    with serve(emulator.app) as served:
        httpx.get(served.url + "/v3/users/alice")

Emulators have the shortcut ``with emulator.serve(): ...`` which also sets ``emulator.url``.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any, ClassVar, TypeVar

import uvicorn
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.websockets.wsproto_impl import WSProtocol

from chatauth.testing.faults import CallLog, EmulatorApp, Faults, generic_error

__all__ = ["STARTUP_DEADLINE", "Emulator", "HostPool", "ServedApp", "serve"]

_E = TypeVar("_E", bound="Emulator")

#: Seconds :func:`serve` waits for the server thread to start, and again for it to stop.
#: Generous because test machines are often loaded (2 cores, other suites running); the wait
#: ends as soon as the server is up, so a long deadline costs nothing when things are fast.
STARTUP_DEADLINE = 60.0


class _QuietH11(H11Protocol):
    """uvicorn's h11 protocol without the access log.

    An emulator plays the provider's server: its access log is the provider's, with whatever
    the provider's API puts in URLs (CometChat's ``DELETE .../auth_tokens/{authToken}``).
    ``access_log=False`` alone is not enough: uvicorn decides per connection from whether the
    process-wide ``uvicorn.access`` logger has handlers, which any other server in the
    process may have given it.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.access_log = False


class _NoWebSocketPaths(logging.Filter):
    """Drops uvicorn's per-connection WebSocket lines (``<client> - "WebSocket <path>" ...``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith('%s - "WebSocket %s"')


_websocket_logger = logging.getLogger("uvicorn.error.emulator")
_websocket_logger.addFilter(_NoWebSocketPaths())


class _QuietWSProto(WSProtocol):
    """uvicorn's wsproto protocol without its per-connection path lines.

    They are the WebSocket half of the provider's access log, with the query string: Stream's
    client SDK sends the user's token as ``/connect?...&authorization=<token>``. The other
    records still reach uvicorn's handlers (the logger is a child of ``uvicorn.error``).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.logger = _websocket_logger


class ServedApp:
    """A running server: ``url`` (``http://127.0.0.1:<port>``, no trailing slash), ``host``,
    ``port``, and the ``app`` it serves."""

    def __init__(
        self, app: Any, host: str, port: int, server: uvicorn.Server, thread: threading.Thread
    ) -> None:
        self.app = app
        self.host = host
        self.port = port
        self.url = f"http://{host}:{port}"
        self.server = server
        self.thread = thread

    def __repr__(self) -> str:
        return f"<ServedApp {self.url}>"


@contextmanager
def serve(
    app: Any,
    *,
    host: str = "127.0.0.1",
    startup_timeout: float = STARTUP_DEADLINE,
    shutdown_timeout: float = STARTUP_DEADLINE,
    log_level: str = "warning",
) -> Iterator[ServedApp]:
    """Serve ``app`` with uvicorn in a daemon thread for the duration of the ``with`` block.

    Raises:
        RuntimeError: the server failed to start (the cause is chained).
        TimeoutError: it did not start within ``startup_timeout`` seconds.
    """
    # Binding the socket ourselves (port 0) gives the port before the server starts, with no
    # window in which another process could take a port we picked.
    # proto=IPPROTO_TCP matters: asyncio only sets TCP_NODELAY on accepted sockets whose proto
    # says TCP, and without it every response waits ~40 ms on Nagle + delayed ACK.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        yield from _serve_on(sock, app, host, port, startup_timeout, shutdown_timeout, log_level)
    finally:
        sock.close()


def _serve_on(
    sock: socket.socket,
    app: Any,
    host: str,
    port: int,
    startup_timeout: float,
    shutdown_timeout: float,
    log_level: str,
) -> Iterator[ServedApp]:
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        # h11 and asyncio explicitly: the reset fault reaches the socket through the protocol
        # object, and test behaviour must not change with whether httptools/uvloop are installed.
        http=_QuietH11,
        loop="asyncio",
        # wsproto (h11's sibling) for the emulators that speak WebSocket (Stream's /connect).
        ws=_QuietWSProto,
        lifespan="off",
        log_level=log_level,
        access_log=False,
        # A request parked by a timeout() fault must not keep the server from stopping.
        timeout_graceful_shutdown=2,
    )
    server = uvicorn.Server(config)
    failure: list[BaseException] = []

    def run() -> None:
        try:
            server.run(sockets=[sock])
        except BaseException as exc:  # reported to the caller's thread below
            failure.append(exc)

    thread = threading.Thread(target=run, name=f"chatauth-emulator-{port}", daemon=True)
    thread.start()
    try:
        _wait_until_accepting(server, thread, host, port, startup_timeout, failure)
        yield ServedApp(app, host, port, server, thread)
    finally:
        server.should_exit = True
        thread.join(shutdown_timeout)
        if thread.is_alive():
            server.force_exit = True
            thread.join(shutdown_timeout)


def _wait_until_accepting(
    server: uvicorn.Server,
    thread: threading.Thread,
    host: str,
    port: int,
    timeout: float,
    failure: list[BaseException],
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if failure:
            raise RuntimeError("emulator server failed to start") from failure[0]
        if not thread.is_alive():
            raise RuntimeError("emulator server thread exited during start-up")
        if server.started:
            try:
                with socket.create_connection((host, port), timeout=0.5):
                    return
            except OSError:
                pass
        time.sleep(0.01)
    server.should_exit = True
    raise TimeoutError(f"emulator server on {host}:{port} did not start in {timeout} s")


class _Switch:
    """An ASGI app forwarding to whichever app is mounted (503 when none is)."""

    def __init__(self) -> None:
        self.app: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        app = self.app
        if app is None:
            if scope["type"] == "http":
                response = JSONResponse({"error": "no emulator mounted"}, status_code=503)
                await response(scope, receive, send)
            return
        # ``send`` goes through untouched: the reset fault needs the server's own callable.
        await app(scope, receive, send)


class HostPool:
    """Servers kept running across tests, each serving one emulator at a time.

    Starting and stopping uvicorn costs ~0.2 s per test; the pytest fixtures instead mount a
    fresh emulator on an idle server of this pool for each test, so state is still per test
    while the port is reused. ``with pool.serve(emulator):`` mounts it and sets its ``url``.
    """

    def __init__(self) -> None:
        self._stack = ExitStack()
        self._idle: list[tuple[_Switch, str]] = []
        self._lock = threading.Lock()

    def __enter__(self) -> HostPool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop every server of the pool."""
        with self._lock:
            self._idle.clear()
        self._stack.close()

    @contextmanager
    def serve(self, emulator: _E) -> Iterator[_E]:
        """Mount ``emulator`` on an idle server (starting one if needed) for the block."""
        with self._lock:
            host = self._idle.pop() if self._idle else None
        if host is None:
            switch = _Switch()
            served = self._stack.enter_context(serve(switch))
            host = (switch, served.url)
        switch, url = host
        switch.app = emulator.app
        emulator.served_url = url
        try:
            yield emulator
        finally:
            switch.app = None
            emulator.served_url = None
            with self._lock:
                self._idle.append(host)


class Emulator:
    """Base class of the provider emulators.

    Attributes: ``app`` (the Starlette app), ``faults`` (:class:`~chatauth.testing.faults.Faults`),
    ``calls`` (every request received), ``url`` (the server root while served; RuntimeError
    otherwise, ``served_url`` is the same or None), ``base_url``
    (``url`` plus the API's version prefix, i.e. what replaces the provider's documented base
    URL), and ``clock`` (seconds since the epoch; tests may pass their own to move time).
    State lives in memory, per instance.
    """

    #: Path prefix of the documented base URL (``/v3`` for CometChat's ``.../v3``).
    api_prefix: ClassVar[str] = ""

    def __init__(self, *, clock: Callable[[], float] | None = None) -> None:
        self.clock: Callable[[], float] = clock or time.time
        # Handlers run on the server thread while tests inspect state from theirs.
        self._lock = threading.RLock()
        self.faults = Faults(self._fault_error)
        #: The server root while served, else None (``url`` raises instead).
        self.served_url: str | None = None
        self.app = EmulatorApp(faults=self.faults, routes=self._routes())

    def __repr__(self) -> str:
        # Never the keys: reprs end up in test logs.
        where = self.served_url or "not served"
        return f"<{type(self).__name__} {where}>"

    @property
    def calls(self) -> CallLog:
        """Every request received, as ``(method, path)`` tuples, in order."""
        return self.faults.calls

    @property
    def url(self) -> str:
        """The server root, ``http://127.0.0.1:<port>``; RuntimeError when not served."""
        if self.served_url is None:
            raise RuntimeError(f"{type(self).__name__} is not being served")
        return self.served_url

    @property
    def base_url(self) -> str:
        """The served URL plus the API's version prefix; the provider's ``base_url`` override."""
        return self.url + self.api_prefix

    @contextmanager
    def serve(self: _E) -> Iterator[_E]:
        """Serve this emulator over real HTTP for the ``with`` block; sets ``self.url``."""
        with serve(self.app) as served:
            self.served_url = served.url
            try:
                yield self
            finally:
                self.served_url = None

    # -- for subclasses ------------------------------------------------------------------

    def _routes(self) -> list[BaseRoute]:
        raise NotImplementedError

    def _fault_error(self, status: int, retry_after: float | None) -> tuple[Any, dict[str, str]]:
        """The provider's error body (and extra headers) for an injected status."""
        return generic_error(status, retry_after)

    def now(self) -> float:
        """The emulator's clock, in seconds."""
        return self.clock()


#: What :func:`read_json` returns for a body that is not JSON.
INVALID_JSON: Any = object()


async def read_json(request: Request) -> Any:
    """The request body parsed as JSON whatever its Content-Type (providers differ on it):
    None for an empty body, :data:`INVALID_JSON` for one that does not parse."""
    raw = await request.body()
    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return INVALID_JSON


def json_response(
    body: Any, status: int = 200, headers: dict[str, str] | None = None
) -> JSONResponse:
    """A JSON response (kept in one place so every emulator encodes alike)."""
    return JSONResponse(body, status_code=status, headers=headers)
