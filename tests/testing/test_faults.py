"""Every fault kind, observed by an httpx client over real HTTP, on every emulator.

Each case is one cheap, valid, authenticated request to that emulator; the fault must change
what the client sees in the documented way, and the emulator must answer normally afterwards.
"""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
import pytest
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from chatauth.testing import (
    ChatCampEmulator,
    ChatKittyEmulator,
    CometChatEmulator,
    SendbirdEmulator,
    StreamEmulator,
    TwilioEmulator,
    chatcamp,
    chatkitty,
    cometchat,
    sendbird,
    stream,
    twilio,
)
from chatauth.testing.faults import FaultInjectionMiddleware, Faults
from chatauth.testing.server import Emulator, HostPool, serve
from tests.testing import _loopback as loopback


@dataclass
class Case:
    """How to send one good request to an emulator, and how its error bodies look."""

    make: Callable[[], Emulator]
    request: Callable[[Emulator, httpx.Client], httpx.Response]
    ok_status: int
    path: str  # the path the request hits, for path-filtered faults
    error_code: Callable[[Any], Any]  # pulls the provider's error code out of a body
    rate_limit_code: Any
    server_error_code: Any


def _cometchat(emu: Emulator, client: httpx.Client) -> httpx.Response:
    return client.get(emu.base_url + "/users/known", headers={"apikey": cometchat.DEFAULT_API_KEY})


def _chatkitty(emu: Emulator, client: httpx.Client) -> httpx.Response:
    auth = base64.b64encode(
        f"{chatkitty.DEFAULT_CLIENT_ID}:{chatkitty.DEFAULT_CLIENT_SECRET}".encode()
    ).decode()
    return client.post(
        emu.base_url + "/oauth/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": f"Basic {auth}"},
    )


def _chatcamp(emu: Emulator, client: httpx.Client) -> httpx.Response:
    return client.post(
        emu.base_url + "/users.get",
        json={"id": "known"},
        headers={"x-api-key": chatcamp.DEFAULT_API_KEY},
    )


def _stream(emu: Emulator, client: httpx.Client) -> httpx.Response:
    token = jwt.encode({"server": True}, stream.DEFAULT_API_SECRET, algorithm="HS256")
    return client.post(
        emu.base_url + "/users",
        params={"api_key": stream.DEFAULT_API_KEY},
        json={"users": {"u1": {"id": "u1"}}},
        headers={"Stream-Auth-Type": "jwt", "Authorization": token},
    )


def _sendbird(emu: Emulator, client: httpx.Client) -> httpx.Response:
    return client.get(
        emu.base_url + "/users/known", headers={"Api-Token": sendbird.DEFAULT_API_TOKEN}
    )


def _twilio(emu: Emulator, client: httpx.Client) -> httpx.Response:
    return client.get(
        emu.base_url + "/Users/known",
        auth=(twilio.DEFAULT_API_KEY_SID, twilio.DEFAULT_API_KEY_SECRET),
    )


def _seeded_cometchat() -> Emulator:
    emu = CometChatEmulator()
    emu.create_user("known")
    return emu


CASES = {
    "cometchat": Case(
        _seeded_cometchat,
        _cometchat,
        200,
        "/v3/users/known",
        lambda b: b["error"]["code"],
        "ERR_TOO_MANY_REQUESTS",
        "ERR_INTERNAL_SERVER_ERROR",
    ),
    "chatkitty": Case(
        ChatKittyEmulator,
        _chatkitty,
        200,
        "/oauth/token",
        lambda b: b["error"],
        "TooManyRequestsError",
        "ServerError",
    ),
    # ChatCamp's "known" user does not exist: the good answer is 404 (users.get), an answer.
    "chatcamp": Case(
        ChatCampEmulator,
        _chatcamp,
        404,
        "/api/2.0/users.get",
        lambda b: b["error"]["code"],
        "rate_limited",
        "internal_error",
    ),
    "stream": Case(StreamEmulator, _stream, 201, "/users", lambda b: b["code"], 9, -1),
    # Sendbird's "known" user does not exist: the good answer is 400201, still an answer.
    "sendbird": Case(
        SendbirdEmulator, _sendbird, 400, "/v3/users/known", lambda b: b["code"], 500910, 500901
    ),
    "twilio": Case(
        TwilioEmulator, _twilio, 404, "/v1/Users/known", lambda b: b["code"], 20429, 20500
    ),
}


@pytest.fixture(params=sorted(CASES))
def case(
    request: pytest.FixtureRequest, chatauth_emulator_hosts: HostPool
) -> Iterator[tuple[Case, Emulator]]:
    spec = CASES[request.param]
    with chatauth_emulator_hosts.serve(spec.make()) as emulator:
        yield spec, emulator


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with loopback.client(timeout=5) as c:
        yield c


def test_no_fault_answers_normally(case: tuple[Case, Emulator], client: httpx.Client) -> None:
    spec, emu = case
    assert spec.request(emu, client).status_code == spec.ok_status
    assert emu.calls[-1] == (emu.calls[-1].method, spec.path)


def test_latency(case: tuple[Case, Emulator], client: httpx.Client) -> None:
    spec, emu = case
    emu.faults.latency(0.3)
    start = time.monotonic()
    response = spec.request(emu, client)
    assert time.monotonic() - start >= 0.3
    assert response.status_code == spec.ok_status
    assert emu.faults.pending == 0


def test_trickle(case: tuple[Case, Emulator], client: httpx.Client) -> None:
    spec, emu = case
    plain = spec.request(emu, client)
    emu.faults.trickle(interval=0.01, chunk=4)
    start = time.monotonic()
    response = spec.request(emu, client)
    # The same answer, only slower: one send of 4 bytes every 10 ms.
    assert time.monotonic() - start >= 0.01 * (len(response.content) // 4 - 1)
    assert response.status_code == plain.status_code == spec.ok_status
    assert response.headers["content-type"] == plain.headers["content-type"]
    assert emu.faults.pending == 0


def test_timeout(case: tuple[Case, Emulator]) -> None:
    spec, emu = case
    emu.faults.timeout()
    with loopback.client(timeout=0.3) as short:
        start = time.monotonic()
        with pytest.raises(httpx.ReadTimeout):
            spec.request(emu, short)
        assert time.monotonic() - start < 5
    with loopback.client(timeout=5) as fresh:
        assert spec.request(emu, fresh).status_code == spec.ok_status


def test_rate_limited_with_retry_after(case: tuple[Case, Emulator], client: httpx.Client) -> None:
    spec, emu = case
    emu.faults.status(429, retry_after=2)
    response = spec.request(emu, client)
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "2"
    assert spec.error_code(response.json()) == spec.rate_limit_code
    assert spec.request(emu, client).status_code == spec.ok_status


@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_errors(case: tuple[Case, Emulator], client: httpx.Client, status: int) -> None:
    spec, emu = case
    emu.faults.status(status)
    response = spec.request(emu, client)
    assert response.status_code == status
    assert "Retry-After" not in response.headers
    code = spec.error_code(response.json())
    if status == 500:
        assert code == spec.server_error_code
    else:
        assert code is not None
    assert spec.request(emu, client).status_code == spec.ok_status


def test_reset(case: tuple[Case, Emulator], client: httpx.Client) -> None:
    spec, emu = case
    emu.faults.reset()
    with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError, httpx.WriteError)):
        spec.request(emu, client)
    # The server saw it, and the next request (new connection) works.
    assert len(emu.calls) == 1
    assert spec.request(emu, client).status_code == spec.ok_status


def test_times_and_path_filter(case: tuple[Case, Emulator], client: httpx.Client) -> None:
    spec, emu = case
    emu.faults.status(503, times=2, path="/somewhere/else")
    emu.faults.status(503, times=2, path=spec.path)
    assert emu.faults.pending == 4
    assert spec.request(emu, client).status_code == 503
    assert spec.request(emu, client).status_code == 503
    assert spec.request(emu, client).status_code == spec.ok_status
    # The fault for the other path is still queued; clear() drops it.
    assert emu.faults.pending == 2
    emu.faults.clear()
    assert emu.faults.pending == 0


# -- the machinery itself, on a trivial app ----------------------------------------------


class Echo(Emulator):
    def _routes(self) -> list[BaseRoute]:
        async def echo(request: Any) -> JSONResponse:
            return JSONResponse({"method": request.method, "body": (await request.body()).decode()})

        return [Route("/echo", echo, methods=["GET", "POST"])]


@pytest.fixture
def echo(serve_emulator: Callable[[Echo], Echo]) -> Echo:
    return serve_emulator(Echo())


def test_faults_are_fifo_and_filter_by_method(echo: Echo, client: httpx.Client) -> None:
    echo.faults.status(500, method="POST")
    echo.faults.status(502)
    assert client.get(echo.url + "/echo").status_code == 502
    assert client.get(echo.url + "/echo").status_code == 200
    assert client.post(echo.url + "/echo").status_code == 500
    assert echo.calls == [("GET", "/echo"), ("GET", "/echo"), ("POST", "/echo")]
    assert echo.calls.count_of("GET") == 2
    assert echo.calls.matching(path="/ec", prefix=True) == echo.calls


def test_status_fault_body_and_headers_can_be_overridden(echo: Echo, client: httpx.Client) -> None:
    echo.faults.status(
        503, body=b"<html>down</html>", headers={"Content-Type": "text/html"}, retry_after=1.5
    )
    response = client.get(echo.url + "/echo")
    assert response.status_code == 503
    assert response.text == "<html>down</html>"
    assert response.headers["content-type"] == "text/html"
    assert response.headers["retry-after"] == "1.5"


def test_a_hold_can_end_in_a_status_instead_of_the_app(echo: Echo, client: httpx.Client) -> None:
    gate = echo.faults.hold(method="POST", then_status=503)
    answers: list[httpx.Response] = []
    poster = threading.Thread(target=lambda: answers.append(client.post(echo.url + "/echo")))
    poster.start()
    try:
        assert gate.wait_entered(30)
        assert not answers  # parked at the gate until the test says
    finally:
        gate.release()
        poster.join(30)
    assert [r.status_code for r in answers] == [503]
    assert client.post(echo.url + "/echo").status_code == 200  # one request held, as asked


def test_timeout_fault_answers_after_hang_when_client_waits(
    echo: Echo, client: httpx.Client
) -> None:
    echo.faults.timeout(hang=0.2)
    start = time.monotonic()
    response = client.post(echo.url + "/echo", content=b"payload")
    assert time.monotonic() - start >= 0.2
    # The body read while hanging is replayed to the app.
    assert response.json() == {"method": "POST", "body": "payload"}


async def test_faults_with_an_async_client(echo: Echo) -> None:
    echo.faults.reset()
    echo.faults.latency(0.2)
    async with loopback.async_client(timeout=5) as client:
        with pytest.raises(httpx.TransportError):
            await client.get(echo.url + "/echo")
        start = time.monotonic()
        assert (await client.get(echo.url + "/echo")).status_code == 200
        assert time.monotonic() - start >= 0.2


def test_invalid_fault_arguments() -> None:
    faults = Faults()
    with pytest.raises(ValueError, match="times"):
        faults.reset(times=0)
    with pytest.raises(ValueError, match="HTTP status"):
        faults.status(99)
    with pytest.raises(ValueError, match="HTTP status"):
        faults.hold(then_status=600)
    with pytest.raises(ValueError, match="latency"):
        faults.latency(-1)


def test_middleware_in_a_plain_starlette_app_truncates_instead_of_reset() -> None:
    # Added with Middleware(...), the injector sits inside ServerErrorMiddleware and cannot
    # reach the socket; the client still sees a broken response, never a valid one.
    from starlette.applications import Starlette
    from starlette.middleware import Middleware

    faults = Faults()

    async def ok(request: Any) -> JSONResponse:
        return JSONResponse({"ok": True})

    app = Starlette(
        routes=[Route("/", ok)], middleware=[Middleware(FaultInjectionMiddleware, faults=faults)]
    )
    faults.reset()
    with serve(app) as served, loopback.client() as c:
        with pytest.raises(httpx.RemoteProtocolError):
            c.get(served.url + "/")
        assert c.get(served.url + "/").json() == {"ok": True}


def test_serve_stops_promptly_and_frees_the_port() -> None:
    emu = Echo()
    with emu.serve():
        url = emu.url
        assert loopback.get(url + "/echo").status_code == 200
    assert emu.served_url is None
    with pytest.raises(httpx.ConnectError):
        loopback.get(url + "/echo", timeout=1)


def test_host_pool_reuses_servers_but_not_state() -> None:
    with HostPool() as pool:
        with pool.serve(CometChatEmulator()) as first:
            first.create_user("amy")
            url = first.url
        with pool.serve(CometChatEmulator()) as second:
            assert second.url == url
            response = loopback.get(
                second.base_url + "/users/amy", headers={"apikey": cometchat.DEFAULT_API_KEY}
            )
            assert response.status_code == 404
            # Two emulators at once get two servers.
            with pool.serve(StreamEmulator()) as third:
                assert third.url != second.url
