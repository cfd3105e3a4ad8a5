"""The secret canary (tests/canary.py) sees what it claims to see. Each test leaks on purpose
through one channel, then takes the hits out of the ledger itself (so it does not fail), and
checks that the hit names the canary and the place without repeating the value."""

from __future__ import annotations

import io
import logging

import httpx
import pytest

from chatauth.errors import ConfigurationError
from chatauth.testing import canary
from tests.canary import ledger

SECRET = canary.secret("self-test")


@pytest.fixture(autouse=True)
def _nothing_left_over() -> None:
    ledger.take()


def test_a_debug_record_of_a_quiet_logger_that_does_not_propagate() -> None:
    quiet = logging.getLogger("tests.canary.quiet")
    quiet.setLevel(logging.ERROR)
    quiet.propagate = False
    received: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = received.append  # type: ignore[method-assign]
    quiet.addHandler(handler)
    try:
        quiet.debug("connecting with %s", SECRET)
        quiet.error("plain")
    finally:
        quiet.removeHandler(handler)
    hits = ledger.take()
    assert len(hits) == 1
    assert hits[0].startswith("the canary secret 'self-test' in a DEBUG log record of logger ")
    assert SECRET not in hits[0]
    assert [r.getMessage() for r in received] == ["plain"]  # handlers see what they saw before


def test_tokens_and_jwts_in_a_traceback() -> None:
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1c2VyLWFsaWNlIn0.c2lnbmF0dXJlLWJ5dGVz"
    try:
        raise RuntimeError(f"refused {canary.token('abc123')}")
    except RuntimeError:
        logging.getLogger("tests.canary").debug("failed for %s", jwt, exc_info=True)
    hits = ledger.take()
    assert sorted(h.split(" in ")[0] for h in hits) == [
        "a signed JWT (a chat token)",
        "a token minted by an emulator",
    ]


def test_error_messages_reprs_and_command_output() -> None:
    ConfigurationError(f"bad value {SECRET}", setting="X")
    import click

    click.echo(f"key: {SECRET}", file=io.StringIO())
    hits = ledger.take()
    assert [h.split(" in ")[1] for h in hits] == ["a ConfigurationError's message"] * 2 + [
        "click.echo output"
    ]


def test_httpx_bodies_secrets_always_tokens_only_in_errors() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        status = int(request.url.params["status"])
        return httpx.Response(status, json={"token": canary.token("x1"), "echo": SECRET})

    with httpx.Client(transport=httpx.MockTransport(answer), base_url="http://app") as client:
        client.get("/t", params={"status": 200})
        assert ledger.take() == [
            "the canary secret 'self-test' in the body of a 200 answer to GET /t"
        ]
        client.get("/t", params={"status": 500})
        assert len(ledger.take()) == 2


def test_the_owners_own_token_answer_is_not_a_leak() -> None:
    from flask import Flask, jsonify

    app = Flask(__name__)

    @app.get("/chat/token")
    def token() -> object:
        return jsonify({"provider": "jwt", "uid": "u", "token": canary.token("mine")})

    @app.get("/other")
    def other() -> object:
        return jsonify({"token": canary.token("someone-elses")})

    client = app.test_client()
    client.get("/chat/token")
    assert ledger.take() == []
    client.get("/other")
    assert ledger.take() == [
        "a token minted by an emulator in the body of a 200 answer to GET /other"
    ]
