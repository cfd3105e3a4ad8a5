"""The flow drivers' retry decisions, and a flow driven over real loopback HTTP."""

from __future__ import annotations

import email.utils
import gzip
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta, timezone

import httpx
import pytest
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from chatauth.errors import ProviderError, ProviderUnavailableError
from chatauth.http import (
    Flow,
    RetryPolicy,
    _backoff_hook,
    _Retryable,
    arun_flow,
    read_json,
    retry_after_seconds,
    run_flow,
)
from chatauth.testing.faults import EmulatorApp, Faults
from chatauth.testing.server import serve


def response(
    status: int, headers: dict[str, str] | None = None, json: object = None
) -> httpx.Response:
    return httpx.Response(
        status, headers=headers, json=json, request=httpx.Request("GET", "http://x")
    )


def test_retry_after_forms() -> None:
    assert retry_after_seconds(response(429, {"Retry-After": "15"})) == 15
    assert retry_after_seconds(response(429, {"Retry-After": "0.5"})) == 0.5
    when = email.utils.format_datetime(
        datetime.now(timezone.utc) + timedelta(seconds=30), usegmt=True
    )
    assert 25 <= (retry_after_seconds(response(503, {"Retry-After": when})) or 0) <= 31
    assert (
        retry_after_seconds(
            response(429, json={"errcode": "M_LIMIT_EXCEEDED", "retry_after_ms": 2500})
        )
        == 2.5
    )
    assert retry_after_seconds(response(503)) is None


def test_backoff_honours_short_retry_after_and_gives_up_on_long_ones() -> None:
    hook = _backoff_hook(RetryPolicy(max_retry_after=3))
    assert hook(_Retryable(response(429, {"Retry-After": "2"}))) == 2
    assert hook(_Retryable(response(429, {"Retry-After": "60"}))) is False
    assert hook(_Retryable(response(500))) is True
    assert hook(httpx.ConnectError("refused")) is True
    assert hook(ValueError()) is False


@pytest.fixture
def server() -> Iterator[tuple[str, Faults]]:
    async def hello(request: object) -> JSONResponse:
        return JSONResponse({"ok": True})

    faults = Faults()
    with serve(EmulatorApp(faults=faults, routes=[Route("/hello", hello)])) as served:
        yield served.url, faults


def two_requests(url: str) -> Flow[list[int]]:
    first = yield httpx.Request("GET", url + "/hello")
    second = yield httpx.Request("GET", url + "/hello")
    return [first.status_code, second.status_code]


def test_flow_over_real_http_retries_then_succeeds(server: tuple[str, Faults]) -> None:
    url, faults = server
    faults.status(503, times=2)
    with httpx.Client() as client:
        assert run_flow(two_requests(url), client, provider="demo") == [200, 200]
    assert len(faults.calls) == 4


def test_long_retry_after_fails_fast_with_it(server: tuple[str, Faults]) -> None:
    url, faults = server
    faults.status(429, retry_after=120, times=5)
    with httpx.Client() as client, pytest.raises(ProviderUnavailableError) as info:
        run_flow(two_requests(url), client, provider="demo")
    assert info.value.retry_after == 120
    assert info.value.status == 429
    assert len(faults.calls) == 1  # not retried: waiting 2 minutes inside a request is wrong


def test_refused_connection_is_unavailable() -> None:
    from tests.servers.ports import free_port

    with httpx.Client() as client, pytest.raises(ProviderUnavailableError) as info:
        run_flow(two_requests(f"http://127.0.0.1:{free_port()}"), client, provider="demo")
    assert info.value.status is None
    assert "ConnectError" in info.value.message


# -- the body cap ----------------------------------------------------------------------------


@pytest.fixture
def big_server() -> Iterator[str]:
    """Answers 2 MiB three ways: announced (Content-Length), streamed without a length, and
    as a 2 KiB gzip body that decodes to 2 MiB."""
    size = 2 << 20

    async def announced(request: object) -> Response:
        return Response(b"x" * size, media_type="application/json")

    async def streamed(request: object) -> StreamingResponse:
        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(size // 65536):
                yield b"x" * 65536

        return StreamingResponse(chunks(), media_type="application/json")

    async def bomb(request: object) -> Response:
        return Response(
            gzip.compress(b"0" * size),
            media_type="application/json",
            headers={"Content-Encoding": "gzip"},
        )

    async def small(request: object) -> JSONResponse:
        return JSONResponse({"ok": True})

    routes = [
        Route(f"/{f.__name__}", f, methods=["GET"]) for f in (announced, streamed, bomb, small)
    ]
    with serve(EmulatorApp(faults=Faults(), routes=routes)) as served:
        yield served.url


def one_request(url: str) -> Flow[bytes]:
    response = yield httpx.Request("GET", url)
    return response.content


@pytest.mark.parametrize("path", ["/announced", "/streamed", "/bomb"])
def test_a_body_over_the_cap_is_a_provider_error(big_server: str, path: str) -> None:
    with httpx.Client() as client, pytest.raises(ProviderError) as info:
        run_flow(one_request(big_server + path), client, provider="demo")
    assert (info.value.code, info.value.status) == ("ERROR_RESPONSE_TOO_LARGE", 200)
    # Under the cap, the same driver reads the body whole.
    with httpx.Client() as client:
        assert run_flow(one_request(big_server + "/small"), client, provider="demo") == (
            b'{"ok":true}'
        )
        policy = RetryPolicy(max_body=4 << 20)
        assert (
            len(run_flow(one_request(big_server + path), client, provider="demo", policy=policy))
            == 2 << 20
        )


@pytest.mark.parametrize("path", ["/announced", "/streamed", "/bomb"])
async def test_a_body_over_the_cap_is_a_provider_error_async(big_server: str, path: str) -> None:
    async with httpx.AsyncClient() as client:
        with pytest.raises(ProviderError) as info:
            await arun_flow(one_request(big_server + path), client, provider="demo")
    assert info.value.code == "ERROR_RESPONSE_TOO_LARGE"


def test_read_json_never_raises() -> None:
    for body in (b"", b"<html>", b"\xff\xfe", b"[" * 100_000, b"1e999999", b'{"a": 1}'):
        parsed = read_json(httpx.Response(200, content=body))
        assert parsed in (None, {"a": 1}, float("inf"))
