"""Property: whatever a provider's server answers, only chatauth errors come out.

Every operation of every provider that calls a server (issue, revoke, check, and the chat-user
update, deactivate and erase) is driven by the real drivers (:func:`chatauth.http.run_flow`,
and :func:`~chatauth.http.arun_flow`) over a real ``httpx`` client whose transport, at the
network edge, answers each request with a drawn response: any status, a body that is
well-formed for the provider, a mutation of one, random JSON, HTML, bytes, gzip that is not
gzip, a huge one; headers with odd ``Content-Type``, ``Retry-After``, ``Content-Length``. The
operation must return its result or raise a :class:`~chatauth.errors.ChatAuthError`, nothing
else.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gzip
import importlib
import json
import pkgutil
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chatauth import ChatAuthError, ChatIdentity
from chatauth.http import MAX_BODY, RetryPolicy, arun_flow, run_flow
from chatauth.providers.base import BaseProvider
from chatauth.tokens import ChatToken, utcnow
from tests.providers import harnesses

URL = "http://provider.invalid"

#: Every provider, built against a URL the transport answers for: each harness module says how
#: (``offline(url)``), so a new provider's harness brings it into this property.
BUILD: dict[str, Callable[[], BaseProvider]] = {
    name: functools.partial(importlib.import_module(f"{harnesses.__name__}.{name}").offline, URL)
    for name in sorted(m.name for m in pkgutil.iter_modules(harnesses.__path__))
}


def operations(p: BaseProvider) -> dict[str, Callable[[], Any]]:
    """Every flow a provider offers, ready to drive."""
    identity = ChatIdentity("user-1", name="User One", avatar="https://img.example/1.png")
    token = ChatToken(
        value="tok-1",
        uid="user-1",
        provider=p.name,
        issued_at=utcnow(),
        expires_at=None,
        data={"user_id": "@user-1:provider.invalid", "device_id": "D"},
    )
    return {
        "issue": lambda: p.issue(identity, timedelta(hours=1)),
        "revoke": lambda: p.revoke(token),
        "check": lambda: p.check(),
        # The chat-user operations (the ones a provider lacks raise their named refusal).
        "update": lambda: p.update_user(identity),
        "deactivate": lambda: p.deactivate_user(identity),
        "erase": lambda: p.erase_user(identity),
    }


OPERATIONS = ["issue", "revoke", "check", "update", "deactivate", "erase"]


# -- answers ------------------------------------------------------------------------------

#: The fields some flow reads, so that drawn objects reach past the first check.
KEYS = [
    "data", "authToken", "access_token", "token", "expires_at", "expires_in", "user_id",
    "device_id", "users", "user", "id", "code", "error", "errcode", "flows", "type",
    "server_version", "retry_after_ms", "message",
]  # fmt: skip

leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["tok", "", " ", "a b", ".", "..", "@user-1:provider.invalid", "user-1"]),
)
json_values = st.recursive(
    leaves,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=6)), inner, max_size=4),
    ),
    max_leaves=12,
)
#: One answer that moves every flow on (each flow reads its own fields), to mutate: so that
#: most drawn answers get past the first check and the later reads are exercised too.
GOOD: dict[str, Any] = {
    "data": {"authToken": "tok", "uid": "user-1"},
    "access_token": "tok",
    "token_type": "bearer",
    "expires_in": 3600,
    "user_id": "@user-1:provider.invalid",
    "device_id": "D",
    "token": "tok",
    "expires_at": 1_900_000_000_000,
    "users": [{"id": "user-1"}],
    "user": {"id": "user-1"},
    "flows": [{"type": "org.matrix.login.jwt"}],
    "server_version": "1",
}


@st.composite
def mutated(draw: st.DrawFn) -> Any:
    """:data:`GOOD` with one to three fields removed or replaced (nested ones included)."""
    body = json.loads(json.dumps(GOOD))
    for _ in range(draw(st.integers(1, 3))):
        where = body
        key = draw(st.sampled_from(sorted(where)))
        if isinstance(where[key], dict) and where[key] and draw(st.booleans()):
            where = where[key]
            key = draw(st.sampled_from(sorted(where)))
        if draw(st.booleans()):
            del where[key]
        else:
            where[key] = draw(json_values)
        if not body:
            break
    return body


def _json(value: Any) -> bytes:
    return json.dumps(value, allow_nan=True).encode()


bodies = st.one_of(
    st.just(GOOD).map(_json),
    mutated().map(_json),
    mutated().map(_json),
    mutated().map(_json),
    json_values.map(_json),
    st.binary(max_size=40),
    st.sampled_from(
        [
            b"",
            b"<html><body>Bad gateway</body></html>",
            b"null",
            b"[]",
            b"[" * 5000 + b"]" * 5000,
            b'{"data": {"authToken": "\xff\xfe"}}',
            b"1e999999",
            b'{"access_token": "tok", "access_token": 5}',
        ]
    ),
)


Answer = tuple[int, dict[str, str], bytes]


@st.composite
def answers(draw: st.DrawFn) -> Answer:
    status = draw(
        st.one_of(
            st.sampled_from([200] * 8 + [201, 204, 400, 401, 403, 404, 409, 429, 500, 503]),
            st.integers(min_value=200, max_value=599),
        )
    )
    content = draw(bodies)
    headers: dict[str, str] = {}
    kind = draw(st.sampled_from(["json", "html", "none", "odd"]))
    if kind != "none":
        headers["Content-Type"] = {
            "json": "application/json",
            "html": "text/html; charset=utf-8",
            "odd": draw(st.text(alphabet="abc/;=- ", max_size=20)),
        }[kind]
    if draw(st.booleans()):
        headers["Retry-After"] = draw(
            st.one_of(
                st.sampled_from(["0", "1", "-5", "1e9", "nan", "soon", "Wed, 21 Oct 2015"]),
                st.text(alphabet="0123456789.:, -abcGMT", max_size=30),
            )
        )
    encoding = draw(st.sampled_from([None, None, "gzip", "gzip-lie", "deflate", "br", "x"]))
    if encoding == "gzip":
        content, headers["Content-Encoding"] = gzip.compress(content), "gzip"
    elif encoding is not None:
        headers["Content-Encoding"] = "gzip" if encoding == "gzip-lie" else encoding
    if draw(st.integers(0, 30)) == 0:
        content = b'{"data": "' + b"x" * (MAX_BODY + 1) + b'"}'
    if draw(st.integers(0, 10)) == 0:
        headers["Content-Length"] = draw(st.sampled_from(["0", "3", "99999999999", "x", "-1"]))
    return status, headers, content


class Answering(httpx.MockTransport):
    """Answers each request with the next drawn response (the last one from then on)."""

    def __init__(self, script: list[Answer]) -> None:
        self.script = list(script)
        self.requests: list[httpx.Request] = []
        super().__init__(self._answer)

    def _answer(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        status, headers, content = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        # A stream, as from a socket: httpx reads (and decodes) it in the driver, not here.
        return httpx.Response(status, headers=headers, stream=httpx.ByteStream(content))


#: Retries still happen (stamina's testing mode: no sleeping) but never wait for Retry-After.
POLICY = RetryPolicy(attempts=2, max_retry_after=0, timeout=30, cleanup_timeout=30)


def outcome_is_a_result_or_a_chatauth_error(call: Callable[[], Any]) -> None:
    try:
        result = call()
    except ChatAuthError:
        return
    assert result is None or isinstance(result, ChatToken | dict)


@pytest.fixture(params=sorted(BUILD))
def build(request: pytest.FixtureRequest) -> Callable[[], BaseProvider]:
    return BUILD[request.param]


# Examples per provider from the profile (tests/conftest.py: 60, "deep" 5,000).
@settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    script=st.lists(answers(), min_size=1, max_size=6),
    which=st.sampled_from(OPERATIONS),
)
def test_any_answer_gives_a_result_or_a_chatauth_error(
    build: Callable[[], BaseProvider], script: list[Answer], which: str
) -> None:
    provider = build()  # fresh: ChatKitty caches its bearer token
    transport = Answering(script)
    with httpx.Client(transport=transport) as client:
        make = operations(provider)[which]
        outcome_is_a_result_or_a_chatauth_error(
            lambda: run_flow(make(), client, provider=provider.name, policy=POLICY)
        )
    # Nothing went anywhere but the provider's own host.
    assert all(r.url.host == "provider.invalid" for r in transport.requests)


@settings(
    max_examples=max(10, settings().max_examples // 4),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(script=st.lists(answers(), min_size=1, max_size=4))
def test_the_async_driver_too(build: Callable[[], BaseProvider], script: list[Answer]) -> None:
    provider = build()

    async def run() -> None:
        async with httpx.AsyncClient(transport=Answering(script)) as client:
            for make in operations(provider).values():
                with contextlib.suppress(ChatAuthError):
                    await arun_flow(make(), client, provider=provider.name, policy=POLICY)

    asyncio.run(run())
