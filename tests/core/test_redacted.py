"""Redacted: the value everywhere but in repr (what error pages and pprint show)."""

from __future__ import annotations

import pprint

from chatauth.redacted import Redacted


def test_repr_and_pprint_hide_the_value_str_keeps_it() -> None:
    value = Redacted("bearer-canary-0123")
    assert repr(value) == "'<redacted>'"
    assert "bearer-canary" not in pprint.pformat({"token": value, "pair": (value, 1.0)})
    assert f"Bearer {value}" == "Bearer bearer-canary-0123"
    assert value == "bearer-canary-0123" and value.encode() == b"bearer-canary-0123"
