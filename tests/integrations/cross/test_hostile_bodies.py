"""Hostile bodies at the provider endpoint every adapter mounts (ChatKitty's verify URL), on
Django, Flask and Starlette: bounded (413), typed (415), parsed without recursion (400), and
the app serves on afterwards. Before the core body reader, ``[`` x 100,000 was a
``RecursionError`` and a 500 in all three, and Starlette read a 100 MB body whole."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chatauth.bodies import MAX_BODY_BYTES

from .drivers import JSON, Driver, Reply

VERIFY = "/chat/chatkitty/verify"
MB = 2**20


def assert_refused(answer: Reply, status: int | None = None, code: str | None = None) -> None:
    """A 4xx JSON error with a code and a message (and the given status and code)."""
    assert 400 <= answer.status < 500, answer
    error = answer.body["error"]
    assert isinstance(error["code"], str) and error["code"], answer
    assert isinstance(error["message"], str) and error["message"], answer
    if status is not None:
        assert (answer.status, error["code"]) == (status, code), answer


def assert_still_serving(driver: Driver) -> None:
    """A real user's chat session still passes the verify URL."""
    browser = driver.browser()
    browser.login("alice")
    session = browser.request("GET", "/chat/token")
    assert session.status == 200, session
    body = {"username": session.body["uid"], "authParams": {"token": session.body["token"]}}
    allowed = driver.browser().request("POST", VERIFY, json.dumps(body).encode())
    assert (allowed.status, allowed.body) == (200, {"allow": True, "username": "user-alice"})


def test_deep_and_large_bodies_of_the_issue(driver: Driver) -> None:
    caller = driver.browser()
    # The issue's body: 200,000 bytes, refused for its size before anything else.
    deep = b"[" * 100_000 + b"]" * 100_000
    assert_refused(caller.request("POST", VERIFY, deep), 413, "ERROR_BODY_TOO_LARGE")
    # As deep, within the size cap: refused by the nesting scan, json never recurses.
    within = b"[" * 30_000 + b"]" * 30_000
    assert len(within) <= MAX_BODY_BYTES
    assert_refused(caller.request("POST", VERIFY, within), 400, "ERROR_JSON_TOO_DEEP")
    nested_object = b'{"a":' * 10_000 + b"1" + b"}" * 10_000
    assert_refused(caller.request("POST", VERIFY, nested_object), 400, "ERROR_JSON_TOO_DEEP")
    # A lone surrogate decodes to a str no handler can encode (Starlette dropped the
    # connection on it): refused by the reader.
    surrogate = b'{"username": "\\ud800", "authParams": {"token": "x"}}'
    assert_refused(caller.request("POST", VERIFY, surrogate), 400, "ERROR_INVALID_JSON")
    assert_still_serving(driver)


def test_a_100_mb_upload_is_refused_without_being_read(driver: Driver) -> None:
    answer, taken = driver.upload(VERIFY, 100 * MB, declared=True)
    assert_refused(answer, 413, "ERROR_BODY_TOO_LARGE")
    assert taken == 0  # refused on its Content-Length
    answer, taken = driver.upload(VERIFY, 100 * MB, declared=False)
    if driver.name == "django":
        # Django's WSGI request reads nothing past CONTENT_LENGTH: no length, an empty body.
        assert_refused(answer, 400, "ERROR_INVALID_JSON")
        assert taken == 0
    else:
        assert_refused(answer, 413, "ERROR_BODY_TOO_LARGE")
        # Cut at the cap: at most one piece (a read or an ASGI message) past it.
        pieces = getattr(driver, "pieces", None)
        if pieces:  # ASGI: a message is as large as what arrived meanwhile
            assert sum(pieces[:-1]) <= MAX_BODY_BYTES < sum(pieces) == taken
        else:  # WSGI: the core's own reads, none larger than the cap
            assert MAX_BODY_BYTES < taken <= 2 * MAX_BODY_BYTES
    assert_still_serving(driver)


# -- fuzzing ------------------------------------------------------------------------------------
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=16,
)
anything = json_values.map(lambda value: json.dumps(value).encode())
verify_shaped = st.fixed_dictionaries(
    {
        "username": st.text() | json_values,
        "authParams": st.fixed_dictionaries({"token": st.text() | json_values}) | json_values,
    }
).map(lambda value: json.dumps(value).encode())
deep = st.tuples(st.integers(1, 40_000), st.sampled_from([b"[", b'{"a":'])).map(
    lambda case: case[1] * case[0] + (b"]" * case[0] if case[1] == b"[" else b"1" + b"}" * case[0])
)
huge = st.integers(MAX_BODY_BYTES - 100, 3 * MAX_BODY_BYTES).map(
    lambda n: b'{"a": "' + b"x" * n + b'"}'
)
not_utf8 = st.binary(max_size=200).map(lambda raw: b'{"username": "' + raw + b'\xff"}')
escapes = st.sampled_from(
    [b'{"username": "\\ud800"}', b'{"a": NaN}', b'{"a": 1e999}', b'{"a": ' + b"9" * 5000 + b"}"]
)
bodies = st.one_of(
    st.binary(max_size=512),
    st.text(max_size=512).map(str.encode),
    anything,
    verify_shaped,
    deep,
    huge,
    not_utf8,
    escapes,
)
content_types = st.one_of(
    st.sampled_from(
        [
            JSON,
            JSON,
            "application/json; charset=utf-8",
            "application/json; charset=latin-1",
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            None,
        ]
    ),
    # Printable ASCII, without the leading or trailing blanks no HTTP client sends (RFC 9110
    # 5.5: a field value has none; httpx refuses to send " " at all).
    st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=60).map(str.strip),
)


def test_fuzzed_verify_bodies_get_a_4xx_json_error_and_the_app_serves_on(driver: Driver) -> None:
    caller = driver.browser()
    seen: list[int] = []

    # One app for all examples, as in production: none may break it for the next.
    @settings(suppress_health_check=[HealthCheck.too_slow])
    @given(body=bodies, content_type=content_types)
    def one_request(body: bytes, content_type: str | None) -> None:
        answer = caller.request("POST", VERIFY, body, content_type=content_type)
        assert_refused(answer)
        seen.append(answer.status)

    one_request()
    assert 413 in seen or 400 in seen  # the strategies reached the reader's refusals
    assert_still_serving(driver)
