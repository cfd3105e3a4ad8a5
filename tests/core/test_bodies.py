"""The inbound body reader (chatauth.bodies): caps, media types, nesting, encodings."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator, Iterator

import pytest

from chatauth.bodies import (
    MAX_BODY_BYTES,
    MAX_JSON_DEPTH,
    ARequestBody,
    RequestBody,
    aread_json_object,
    parse_json_object,
    read_json_object,
)
from chatauth.errors import RequestBodyError, RequestTooLargeError, UnsupportedMediaTypeError
from chatauth.responses import error_answer


class EndlessStream:
    """A file-like upload that never ends; counts what was read from it."""

    def __init__(self) -> None:
        self.read_bytes = 0

    def read(self, n: int) -> bytes:
        self.read_bytes += n
        return b" " * n


async def endless_chunks(counter: list[int], size: int = 65_536) -> AsyncIterator[bytes]:
    while True:
        counter[0] += size
        yield b" " * size


def code_of(exc: pytest.ExceptionInfo[RequestBodyError]) -> str:
    return exc.value.code


def test_a_declared_length_over_the_cap_is_refused_before_any_read() -> None:
    stream = EndlessStream()
    body = RequestBody("application/json", str(100 * 2**20), stream.read)
    with pytest.raises(RequestTooLargeError) as caught:
        read_json_object(body)
    assert stream.read_bytes == 0
    assert caught.value.limit == MAX_BODY_BYTES
    assert error_answer(caught.value)[0] == 413
    # A thousand-digit length is refused as text, without building the integer.
    with pytest.raises(RequestTooLargeError):
        read_json_object(RequestBody("application/json", "9" * 1000, stream.read))


def test_an_undeclared_length_is_counted_and_cut_at_the_cap() -> None:
    stream = EndlessStream()
    with pytest.raises(RequestTooLargeError):
        read_json_object(RequestBody("application/json", None, stream.read))
    assert MAX_BODY_BYTES < stream.read_bytes <= MAX_BODY_BYTES + 1
    # A lying Content-Length (small, then more arrives) is cut the same way.
    lying = EndlessStream()
    with pytest.raises(RequestTooLargeError):
        read_json_object(RequestBody("application/json", "2", lying.read))
    assert lying.read_bytes <= MAX_BODY_BYTES + 1


def test_the_async_stream_is_left_at_the_cap() -> None:
    counter = [0]
    with pytest.raises(RequestTooLargeError):
        asyncio.run(
            aread_json_object(ARequestBody("application/json", None, endless_chunks(counter)))
        )
    assert MAX_BODY_BYTES < counter[0] <= 2 * MAX_BODY_BYTES  # one chunk past the cap at most


def test_exactly_the_cap_is_accepted() -> None:
    payload = b'{"a": "' + b"x" * (MAX_BODY_BYTES - 9) + b'"}'
    assert len(payload) == MAX_BODY_BYTES
    assert read_json_object(RequestBody.of(payload)) == {"a": "x" * (MAX_BODY_BYTES - 9)}


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json",
        "APPLICATION/JSON",
        "application/json; charset=utf-8",
        'application/json; charset="UTF-8"',
        "application/vnd.api+json",
    ],
)
def test_json_media_types_are_accepted(content_type: str) -> None:
    assert read_json_object(RequestBody.of(b'{"a": 1}', content_type)) == {"a": 1}


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "",
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/json; charset=latin-1",
        "application/jsonx",
        "json",
        "\x00\r\n;;;=",
    ],
)
def test_other_media_types_are_415(content_type: str | None) -> None:
    with pytest.raises(UnsupportedMediaTypeError) as caught:
        read_json_object(RequestBody.of(b'{"a": 1}', content_type))
    assert error_answer(caught.value)[:2] == (
        415,
        {"error": {"code": "ERROR_UNSUPPORTED_MEDIA_TYPE", "message": caught.value.message}},
    )


@pytest.mark.parametrize("length", ["-1", "1e3", "0x10", " ", "١٢", "12, 12"])
def test_a_malformed_content_length_is_400(length: str) -> None:
    with pytest.raises(RequestBodyError) as caught:
        read_json_object(RequestBody("application/json", length, io.BytesIO(b"{}").read))
    assert code_of(caught) == "ERROR_BAD_REQUEST"
    assert error_answer(caught.value)[0] == 400


def nested(depth: int, inner: str = "") -> bytes:
    return ("[" * depth + inner + "]" * depth).encode()


def test_nesting_is_bounded_before_json_runs() -> None:
    assert parse_json_object(b'{"a": ' + nested(MAX_JSON_DEPTH - 1) + b"}")
    for body in (b'{"a": ' + nested(MAX_JSON_DEPTH) + b"}", nested(30_000), b"{" * 60_000):
        with pytest.raises(RequestBodyError) as caught:
            parse_json_object(body)
        assert code_of(caught) == "ERROR_JSON_TOO_DEEP"
        assert error_answer(caught.value)[0] == 400
    # The reproduction: 200,000 bytes, refused for its size before anything else.
    with pytest.raises(RequestTooLargeError):
        read_json_object(RequestBody.of(nested(100_000)))


def test_brackets_inside_strings_are_text() -> None:
    text = "[{" * 1000 + '\\"' + "]}" * 7
    assert parse_json_object(json.dumps({"a": text}).encode()) == {"a": text}


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"", "ERROR_INVALID_JSON"),
        (b"\xff\xfe{}", "ERROR_INVALID_JSON"),
        (b'{"a": "\xed\xa0\x80"}', "ERROR_INVALID_JSON"),  # an encoded surrogate: not UTF-8
        (b'{"a": "\\ud800"}', "ERROR_INVALID_JSON"),  # a lone surrogate escape
        (b'{"a": NaN}', "ERROR_INVALID_JSON"),
        (b'{"a": -Infinity}', "ERROR_INVALID_JSON"),
        (b'{"a": ' + b"1" * 5000 + b"}", "ERROR_INVALID_JSON"),  # over int's digit limit
        (b'{"a": 1', "ERROR_INVALID_JSON"),
        (b'{"a": "unterminated', "ERROR_INVALID_JSON"),
        (b'"\\' * 30_000, "ERROR_INVALID_JSON"),
        (b"[]", "ERROR_BAD_REQUEST"),
        (b'"text"', "ERROR_BAD_REQUEST"),
        (b"null", "ERROR_BAD_REQUEST"),
    ],
)
def test_bodies_that_are_not_a_json_object_are_400(body: bytes, code: str) -> None:
    with pytest.raises(RequestBodyError) as caught:
        parse_json_object(body)
    assert code_of(caught) == code
    assert error_answer(caught.value)[0] == 400


def test_a_paired_surrogate_escape_is_a_character() -> None:
    assert parse_json_object(b'{"a": "\\ud83d\\ude00"}') == {"a": "\U0001f600"}


def test_reads_come_in_bounded_pieces() -> None:
    asked: list[int] = []
    data = io.BytesIO(b'{"a": "' + b"x" * 40_000 + b'"}')

    def read(n: int) -> bytes:
        asked.append(n)
        return data.read(n)

    assert read_json_object(RequestBody("application/json", None, read))
    assert max(asked) <= 16 * 1024


def _chunks(parts: list[bytes]) -> Iterator[bytes]:
    yield from parts


def test_the_async_reader_joins_chunks() -> None:
    async def stream() -> AsyncIterator[bytes]:
        for part in _chunks([b'{"user', b'name": ', b'"al\xc3', b'\xa9"}']):
            yield part

    body = ARequestBody("application/json", None, stream())
    assert asyncio.run(aread_json_object(body)) == {"username": "al\u00e9"}
