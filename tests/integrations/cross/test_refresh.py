"""The refresh endpoint and ``chatauth.js`` on Django, Flask and Starlette: identical answers.

``POST /chat/token/refresh`` (DESIGN §5) with the token the chat SDK rejected. The provider is
ChatKitty's emulator, whose tokens chatauth verifies against the store (the verify endpoint
answers 403 ``ERROR_SESSION_ENDED`` for a token that was replaced), and CometChat's, which
revokes at the provider. Time is a :class:`~chatauth.testing.clock.ManualClock` shared by the
store and the service, so the replacement limit's window is crossed by advancing it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from chatauth.assets import script_source
from chatauth.refresh import REFRESH_LIMIT, REFRESH_WINDOW
from chatauth.testing.clock import ManualClock
from chatauth.testing.cometchat import CometChatEmulator

from .drivers import BreakableStore, Browser, Driver, Reply
from .test_cross_framework import NO_STORE, Transcript, check, error, session, token, verify


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def store(tmp_path: Path, clock: ManualClock) -> Iterator[BreakableStore]:
    """The suite's store on a manual clock: the service built over it reads the same one."""
    store = BreakableStore(tmp_path / "chatauth.sqlite3", timeout=2.0, clock=clock)
    yield store
    store.close()


def refresh(browser: Browser, t: Transcript, rejected: str) -> Reply:
    body = json.dumps({"token": rejected}).encode()
    return t.add(browser.request("POST", "/chat/token/refresh", body))


def test_refresh_replaces_the_rejected_token(driver: Driver) -> None:
    t = Transcript()
    browser = driver.browser()
    browser.login("alice")
    token(browser, t)
    refresh(browser, t, t.token(1))  # the SDK says token 1 was refused: replaced
    token(browser, t)  # the token endpoint now serves the new one
    refresh(browser, t, t.token(1))  # a second tab reports token 1 too: the current one
    verify(browser, t, "user-alice", t.token(1))  # the replaced token is dead
    verify(browser, t, "user-alice", t.token(2))
    check(
        t.replies,
        [
            (200, session("user-alice", "<token-1>"), NO_STORE),
            (200, session("user-alice", "<token-2>"), NO_STORE),
            (200, session("user-alice", "<token-2>"), NO_STORE),
            (200, session("user-alice", "<token-2>"), NO_STORE),
            (403, error("ERROR_SESSION_ENDED"), NO_STORE),
            (200, {"allow": True, "username": "user-alice"}, NO_STORE),
        ],
    )


def test_refresh_of_a_token_never_issued_answers_the_current_one(driver: Driver) -> None:
    t = Transcript()
    browser = driver.browser()
    browser.login("alice")
    refresh(browser, t, "a-token-chatauth-never-issued")  # nothing stored yet: one is issued
    refresh(browser, t, "a-token-chatauth-never-issued")
    check(
        t.replies,
        [
            (200, session("user-alice", "<token-1>"), NO_STORE),
            (200, session("user-alice", "<token-1>"), NO_STORE),
        ],
    )


def test_refresh_only_touches_its_own_app_session(driver: Driver) -> None:
    t = Transcript()
    one, two = driver.browser(), driver.browser()
    one.login("alice")
    two.login("alice")
    token(one, t)
    token(two, t)
    refresh(two, t, t.token(1))  # browser two reports browser one's token: not its own
    verify(one, t, "user-alice", t.token(1))
    check(
        t.replies,
        [
            (200, session("user-alice", "<token-1>"), NO_STORE),
            (200, session("user-alice", "<token-2>"), NO_STORE),
            (200, session("user-alice", "<token-2>"), NO_STORE),
            (200, {"allow": True, "username": "user-alice"}, NO_STORE),
        ],
    )


def test_refresh_refuses_bad_requests(driver: Driver) -> None:
    t = Transcript()
    anonymous = driver.browser()
    refresh(anonymous, t, "whatever")
    browser = driver.browser()
    browser.login("alice")
    token(browser, t)
    body = json.dumps({"token": t.token(1)}).encode()
    # Not JSON by its type: what a cross-site HTML form can send.
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data"):
        t.add(browser.request("POST", "/chat/token/refresh", body, content_type))
    t.add(browser.request("POST", "/chat/token/refresh", body, None))  # no type at all
    for bad in (b"[]", b'{"token": ""}', b'{"token": 42}', b"{}"):
        t.add(browser.request("POST", "/chat/token/refresh", bad))
    t.add(browser.request("POST", "/chat/token/refresh", b"not json"))
    t.add(browser.request("POST", "/chat/token/refresh", b"[" * 10_000 + b"]" * 10_000))
    t.add(browser.request("POST", "/chat/token/refresh", b'{"token": "' + b"x" * 70_000 + b'"}'))
    # Parameters of the media type are fine.
    charset = "application/json; charset=utf-8"
    t.add(browser.request("POST", "/chat/token/refresh", b'{"token": "x"}', charset))
    token(browser, t)  # none of it replaced the token
    bad_request = (400, error("ERROR_BAD_REQUEST"), NO_STORE)
    unsupported = (415, error("ERROR_UNSUPPORTED_MEDIA_TYPE"), NO_STORE)
    check(
        t.replies,
        [
            (401, error("ERROR_NOT_AUTHENTICATED"), NO_STORE),
            (200, session("user-alice", "<token-1>"), NO_STORE),
            *[unsupported] * 4,
            *[bad_request] * 4,
            (400, error("ERROR_INVALID_JSON"), NO_STORE),
            (400, error("ERROR_JSON_TOO_DEEP"), NO_STORE),
            (413, error("ERROR_BODY_TOO_LARGE"), NO_STORE),
            (200, session("user-alice", "<token-1>"), NO_STORE),
            (200, session("user-alice", "<token-1>"), NO_STORE),
        ],
    )


def test_refresh_is_bounded_per_session(driver: Driver, clock: ManualClock) -> None:
    t = Transcript()
    browser, other = driver.browser(), driver.browser()
    browser.login("alice")
    other.login("alice")
    token(browser, t)
    for number in range(1, REFRESH_LIMIT + 1):
        refresh(browser, t, t.token(number))
    clock.advance(REFRESH_WINDOW - 10)
    refresh(browser, t, t.token(REFRESH_LIMIT + 1))  # over the limit: refused, kept
    refresh(browser, t, "not-the-current-token")  # no replacement asked: answered
    token(other, t)  # another app session of the same user has its own allowance
    refresh(other, t, t.token(REFRESH_LIMIT + 2))
    clock.advance(10)  # the first replacement leaves the window
    refresh(browser, t, t.token(REFRESH_LIMIT + 1))
    limited = {**NO_STORE, "retry-after": "10"}
    replaced = [
        (200, session("user-alice", f"<token-{n}>"), NO_STORE) for n in range(1, REFRESH_LIMIT + 2)
    ]
    last = REFRESH_LIMIT + 1
    check(
        t.replies,
        [
            *replaced,
            (429, error("ERROR_REFRESH_LIMITED"), limited),
            (200, session("user-alice", f"<token-{last}>"), NO_STORE),
            (200, session("user-alice", f"<token-{last + 1}>"), NO_STORE),
            (200, session("user-alice", f"<token-{last + 2}>"), NO_STORE),
            (200, session("user-alice", f"<token-{last + 3}>"), NO_STORE),
        ],
    )


def test_refresh_revokes_the_replaced_token_at_the_provider(
    revoking_driver: Driver, store: BreakableStore, cometchat_emulator: CometChatEmulator
) -> None:
    browser = revoking_driver.browser()
    browser.login("alice")
    first = browser.request("GET", "/chat/token").body["token"]
    body = json.dumps({"token": first}).encode()
    answer = browser.request("POST", "/chat/token/refresh", body)
    assert answer.status == 200
    second = answer.body["token"]
    assert second != first
    assert not cometchat_emulator.is_token_alive(first)
    assert cometchat_emulator.is_token_alive(second)
    assert store.tokens("user-alice") == [second]
    # The same rejected token again (a second tab): nothing more is revoked or issued.
    again = browser.request("POST", "/chat/token/refresh", body)
    assert again.body["token"] == second
    assert cometchat_emulator.is_token_alive(second)
    assert store.tokens("user-alice") == [second]


def test_refresh_with_the_provider_down_queues_the_revocation(
    revoking_driver: Driver, store: BreakableStore, cometchat_emulator: CometChatEmulator
) -> None:
    browser = revoking_driver.browser()
    browser.login("alice")
    first = browser.request("GET", "/chat/token").body["token"]
    cometchat_emulator.faults.status(503, retry_after=4, times=100)
    body = json.dumps({"token": first}).encode()
    answer = browser.request("POST", "/chat/token/refresh", body)
    # The old token is out of the store and queued for revocation; no new one could be made.
    assert (answer.status, answer.headers.get("retry-after")) == (503, "4")
    assert store.tokens("user-alice") == []
    assert store.count_pending() == 1
    cometchat_emulator.faults.clear()
    answer = browser.request("POST", "/chat/token/refresh", body)
    assert answer.status == 200
    assert answer.body["token"] != first
    assert revoking_driver.service.revoke_pending().remaining == 0
    assert not cometchat_emulator.is_token_alive(first)


def _script(browser: Browser, t: Transcript, if_none_match: str | None = None) -> Reply:
    headers = {"If-None-Match": if_none_match} if if_none_match else None
    answer = browser.request("GET", "/chat/chatauth.js", headers=headers)
    # Flask-Login reads the session after every request (its remember cookie), which makes
    # Flask add "Vary: Cookie": the app's own doing, harmless for a public script.
    answer.headers.pop("vary", None)
    return t.add(answer)


def test_the_script_is_served_cacheable(driver: Driver) -> None:
    t = Transcript()
    anonymous = driver.browser()  # public: no login needed
    etag = _script(anonymous, t).headers["etag"]
    _script(anonymous, t, etag)
    _script(anonymous, t, '"other"')
    script = {
        "content-type": "text/javascript",
        "cache-control": "public, max-age=3600",
        "etag": etag,
        "x-content-type-options": "nosniff",
    }
    cached = {"cache-control": "public, max-age=3600", "etag": etag}
    check(
        t.replies,
        [(200, script_source(), script), (304, b"", cached), (200, script_source(), script)],
    )
