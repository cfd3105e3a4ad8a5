"""The same scenarios against Django, Flask and Starlette: identical status, body and headers.

Every scenario is written once, with the answers it expects; each runs on every framework
(``driver`` is parametrized), so a framework that answers differently fails its own case.
The provider is ChatKitty's emulator over real HTTP (its verify endpoint is the provider
endpoint every adapter mounts), the store a real SQLite file. Token values differ from run
to run, so answers are compared with each token replaced by its order of appearance
(``<token-1>``) and each expiry, once checked to be an RFC 3339 UTC time, by ``<time>``.
"""

from __future__ import annotations

import json
import re
from typing import Any

from chatauth.testing.chatkitty import DEFAULT_API_KEY, ChatKittyEmulator
from chatauth.testing.cometchat import CometChatEmulator

from .drivers import BreakableStore, Browser, Driver, Reply

JSON = "application/json"
NO_STORE = {
    "content-type": JSON,
    "cache-control": "no-store",
    "pragma": "no-cache",
    "vary": "Cookie",
}
TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\Z")


class Transcript:
    """The answers of one scenario, normalised for comparison across frameworks."""

    def __init__(self) -> None:
        self.replies: list[Reply] = []
        self.tokens: dict[str, str] = {}

    def token(self, number: int) -> str:
        """The real value of ``<token-number>`` (for the verify calls)."""
        return next(value for value, name in self.tokens.items() if name == f"<token-{number}>")

    def add(self, answer: Reply) -> Reply:
        body = answer.body
        if isinstance(body, dict) and "token" in body:
            name = self.tokens.setdefault(body["token"], f"<token-{len(self.tokens) + 1}>")
            assert TIME.match(body["expires_at"]), body["expires_at"]
            body = {**body, "token": name, "expires_at": "<time>"}
        headers = dict(answer.headers)
        if "content-type" in headers:  # charset parameters differ; the media type may not
            headers["content-type"] = headers["content-type"].split(";")[0]
        normal = Reply(answer.status, body, headers)
        self.replies.append(normal)
        return normal


def session(uid: str, token: str) -> dict[str, Any]:
    return {
        "provider": "chatkitty",
        "uid": uid,
        "token": token,
        "expires_at": "<time>",
        "client": {"api_key": DEFAULT_API_KEY},
    }


def error(code: str) -> dict[str, Any]:
    """An error body; the message is compared across frameworks, not spelled out here."""
    return {"error": {"code": code, "message": ...}}


def check(got: list[Reply], expected: list[tuple[int, Any, dict[str, str]]]) -> None:
    assert [r.status for r in got] == [status for status, _, _ in expected]
    for reply, (_, body, headers) in zip(got, expected, strict=True):
        if isinstance(body, dict) and body.get("error", {}).get("message") is ...:
            assert set(reply.body) == {"error"}
            assert reply.body["error"]["code"] == body["error"]["code"]
            assert isinstance(reply.body["error"]["message"], str)
            assert reply.body["error"]["message"]
        else:
            assert reply.body == body
        assert reply.headers == headers


def token(browser: Browser, t: Transcript) -> Reply:
    return t.add(browser.request("GET", "/chat/token"))


def verify(browser: Browser, t: Transcript, username: str, value: str) -> Reply:
    body = json.dumps({"username": username, "authParams": {"token": value}}).encode()
    return t.add(browser.request("POST", "/chat/chatkitty/verify", body))


# -- the scenarios ------------------------------------------------------------------------------
def test_no_login(driver: Driver) -> None:
    t = Transcript()
    token(driver.browser(), t)
    check(t.replies, [(401, error("ERROR_NOT_AUTHENTICATED"), NO_STORE)])


def test_login_then_cached(driver: Driver, chatkitty_emulator: ChatKittyEmulator) -> None:
    t = Transcript()
    browser = driver.browser()
    browser.login("alice")
    token(browser, t)
    token(browser, t)
    check(
        t.replies,
        [
            (200, session("user-alice", "<token-1>"), NO_STORE),
            (200, session("user-alice", "<token-1>"), NO_STORE),  # cached: the same token
        ],
    )
    assert chatkitty_emulator.calls.count(("POST", "/v1/users")) == 1


def test_two_browsers_hold_two_sessions(driver: Driver) -> None:
    t = Transcript()
    one, two = driver.browser(), driver.browser()
    one.login("alice")
    two.login("alice")
    token(one, t)
    token(two, t)
    check(
        t.replies,
        [
            (200, session("user-alice", "<token-1>"), NO_STORE),
            (200, session("user-alice", "<token-2>"), NO_STORE),
        ],
    )


def test_provider_down(driver: Driver, chatkitty_emulator: ChatKittyEmulator) -> None:
    t = Transcript()
    browser = driver.browser()
    browser.login("alice")
    chatkitty_emulator.faults.status(503, retry_after=7, times=100)
    token(browser, t)
    check(
        t.replies,
        [(503, error("ERROR_PROVIDER_UNAVAILABLE"), {**NO_STORE, "retry-after": "7"})],
    )


def test_store_down(driver: Driver, store: BreakableStore) -> None:
    t = Transcript()
    browser = driver.browser()
    browser.login("alice")
    store.corrupt()
    token(browser, t)
    check(t.replies, [(503, error("ERROR_STORE_UNAVAILABLE"), {**NO_STORE, "retry-after": "1"})])


def test_user_switch_ends_the_previous_users_chat_session(driver: Driver) -> None:
    t = Transcript()
    browser = driver.browser()
    browser.login("alice")
    token(browser, t)
    browser.login("bob")  # without logging out first
    token(browser, t)
    verify(browser, t, "user-alice", t.token(1))
    check(
        t.replies,
        [
            (200, session("user-alice", "<token-1>"), NO_STORE),
            (200, session("user-bob", "<token-2>"), NO_STORE),
            (403, error("ERROR_SESSION_ENDED"), NO_STORE),
        ],
    )


def test_logout(driver: Driver) -> None:
    t = Transcript()
    browser = driver.browser()
    browser.login("alice")
    token(browser, t)
    browser.logout()
    token(browser, t)
    verify(browser, t, "user-alice", t.token(1))
    check(
        t.replies,
        [
            (200, session("user-alice", "<token-1>"), NO_STORE),
            (401, error("ERROR_NOT_AUTHENTICATED"), NO_STORE),
            (403, error("ERROR_SESSION_ENDED"), NO_STORE),
        ],
    )


def test_verify_endpoint_good_and_forged(driver: Driver) -> None:
    t = Transcript()
    browser = driver.browser()
    browser.login("alice")
    token(browser, t)
    caller = driver.browser()  # ChatKitty's server: no app session
    verify(caller, t, "user-alice", t.token(1))
    verify(caller, t, "user-mallory", t.token(1))
    verify(caller, t, "user-alice", "forged." + t.token(1)[7:])
    t.add(caller.request("POST", "/chat/chatkitty/verify", b"not json"))
    t.add(caller.request("POST", "/chat/chatkitty/verify", b"[]"))
    t.add(caller.request("POST", "/chat/chatkitty/verify", b"{}", content_type="text/plain"))
    t.add(caller.request("GET", "/chat/chatkitty/verify"))
    t.add(caller.request("POST", "/chat/no/such/endpoint", b"{}"))
    check(
        t.replies,
        [
            (200, session("user-alice", "<token-1>"), NO_STORE),
            (200, {"allow": True, "username": "user-alice"}, NO_STORE),
            (403, error("ERROR_AUTH_PARAMS_USERNAME"), NO_STORE),
            (403, error("ERROR_AUTH_PARAMS_INVALID"), NO_STORE),
            (400, error("ERROR_INVALID_JSON"), NO_STORE),
            (400, error("ERROR_BAD_REQUEST"), NO_STORE),
            (415, error("ERROR_UNSUPPORTED_MEDIA_TYPE"), NO_STORE),
            (405, error("ERROR_METHOD_NOT_ALLOWED"), {**NO_STORE, "allow": "POST"}),
            (404, error("ERROR_NOT_FOUND"), NO_STORE),
        ],
    )


# -- the end of a chat session, seen at the provider and in the store (issue 13) ----------------
def _token_of(browser: Browser) -> str:
    answer = browser.request("GET", "/chat/token")
    assert answer.status == 200, answer
    value: str = answer.body["token"]
    return value


def test_user_switch_revokes_the_previous_users_token(
    revoking_driver: Driver, store: BreakableStore, cometchat_emulator: CometChatEmulator
) -> None:
    browser = revoking_driver.browser()
    browser.login("alice")
    alice = _token_of(browser)
    browser.login("bob")  # without logging out first (Django: login() flushes, no logout signal)
    if revoking_driver.ends_at_login:
        assert store.tokens("user-alice") == []
        assert not cometchat_emulator.is_token_alive(alice)
    bob = _token_of(browser)
    assert store.tokens("user-alice") == []
    assert not cometchat_emulator.is_token_alive(alice)
    assert store.tokens("user-bob") == [bob]
    assert cometchat_emulator.is_token_alive(bob)


def test_logout_with_the_store_down_answers_and_the_sweep_ends_it(
    revoking_driver: Driver, store: BreakableStore, cometchat_emulator: CometChatEmulator
) -> None:
    browser = revoking_driver.browser()
    browser.login("alice")
    alice = _token_of(browser)
    with store.locked():  # no write reaches the store: the end goes to the journal
        browser.logout()  # the framework's own answer (200, or Django's 302), never a 500
        assert browser.request("GET", "/chat/token").status == 401  # logged out all the same
    assert store.tokens("user-alice") == [alice]
    assert cometchat_emulator.is_token_alive(alice)
    report = revoking_driver.service.sweep()
    assert report.journaled == 1
    assert store.tokens("user-alice") == []
    assert not cometchat_emulator.is_token_alive(alice)
    assert store.count_pending() == 0


def test_logout_with_the_provider_down_answers_and_queues_the_revocation(
    revoking_driver: Driver, store: BreakableStore, cometchat_emulator: CometChatEmulator
) -> None:
    browser = revoking_driver.browser()
    browser.login("alice")
    alice = _token_of(browser)
    cometchat_emulator.faults.status(503, times=100)
    browser.logout()
    assert browser.request("GET", "/chat/token").status == 401
    assert store.tokens("user-alice") == []
    assert cometchat_emulator.is_token_alive(alice)
    assert store.count_pending() == 1
    cometchat_emulator.faults.clear()
    report = revoking_driver.service.revoke_pending()
    assert (report.revoked, report.remaining) == (1, 0)
    assert not cometchat_emulator.is_token_alive(alice)
