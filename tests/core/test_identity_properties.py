"""Hypothesis properties of identities: the user -> UID mapping is injective (case and Unicode
included), any user id gives a valid UID or an InvalidUIDError, and a UID reaches a
provider's URL only as an encoded path segment (or an encoded query value).
"""

from __future__ import annotations

import string
import unicodedata
import urllib.parse
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from chatauth import ChatAuth, ChatIdentity, IdentityMapper, InvalidTokenError, InvalidUIDError
from chatauth.config import normalize_settings
from chatauth.http import Flow
from chatauth.providers import BaseProvider, provider_class
from chatauth.stores.memory import MemoryStore
from chatauth.tokens import ChatToken, check_token_value, utcnow
from tests.core.test_settings import BASES

PROBE = "probe"


def provider(name: str) -> BaseProvider:
    cfg = normalize_settings(BASES[name])
    return provider_class(str(cfg["provider"])).from_settings(cfg)


PROVIDERS = {name: provider(name) for name in sorted(BASES)}

user_ids = st.one_of(
    st.integers(),
    st.text(max_size=40),
    st.text(alphabet=st.characters(codec="ascii"), max_size=40),
    st.sampled_from(["é", "e\u0301", "ﬁ", "fi", "İ", "i̇", "ß", "SS", "..", ".", "/", "%2F"]),
)


class User:
    def __init__(self, pk: Any) -> None:
        self.pk = pk


@given(a=user_ids, b=user_ids)
def test_the_default_mapping_is_injective(a: Any, b: Any) -> None:
    """Distinct primary keys, whatever their case or Unicode form, never share a UID."""
    mapper = IdentityMapper()
    if str(a) == str(b) or str(a) == "" or str(b) == "":
        return
    assert mapper(User(a)).uid != mapper(User(b)).uid


@pytest.mark.parametrize("name", sorted(PROVIDERS))
@given(a=user_ids, b=user_ids)
def test_accepted_uids_are_unchanged_so_never_merged(name: str, a: Any, b: Any) -> None:
    """``validate`` returns a UID unchanged or refuses it: two accepted UIDs that differ stay
    different at the provider, including for a provider that folds case (CometChat: only
    lower case is accepted) and across Unicode forms (only NFC is accepted)."""
    rules = PROVIDERS[name].uid_rules
    accepted = []
    for raw in (a, b):
        uid = f"user-{raw}"
        try:
            assert rules.validate(uid, name) == uid
        except InvalidUIDError as error:
            assert error.code in ("ERROR_INVALID_UID", "ERROR_UID_WITH_SPACE")
            continue
        accepted.append(uid)
    if rules.folds_case:
        assert all(uid == uid.lower() for uid in accepted)
    if len(accepted) == 2 and accepted[0] != accepted[1]:
        assert {unicodedata.normalize("NFC", u) for u in accepted} == set(accepted)


@pytest.fixture(scope="module")
def local_services() -> Iterator[dict[str, ChatAuth]]:
    services = {
        name: ChatAuth(PROVIDERS[name], MemoryStore(), mapper=IdentityMapper(uid_prefix=""))
        for name in ("jwt", "twilio")
    }
    yield services
    for service in services.values():
        service.close()


@pytest.mark.parametrize("name", ["jwt", "twilio"])
@given(user_id=user_ids)
def test_any_user_id_gives_a_session_or_an_invalid_uid_error(
    local_services: dict[str, ChatAuth], name: str, user_id: Any
) -> None:
    """Through the whole service (providers that mint locally): never another exception."""
    try:
        session = local_services[name].get_session(User(user_id), "app-session")
    except InvalidUIDError:
        return
    assert session.uid == str(user_id)


# -- UIDs in URLs ---------------------------------------------------------------------------

#: One answer that moves every provider's flow on to its next request.
ANSWER = {
    "data": {"authToken": "tok"},
    "access_token": "tok",
    "token": "tok",
    "expires_in": 3600,
    "user_id": "@u:h",
    "device_id": "D",
    "ok": True,
    "user": {"access_token": "tok"},
    "users": [],
}


def requests_of(flow: Flow[Any]) -> list[httpx.Request]:
    seen = []
    try:
        request = next(flow)
        while len(seen) < 10:
            seen.append(request)
            request = flow.send(httpx.Response(200, json=ANSWER, request=request))
    except StopIteration:
        pass
    return seen


def flows(name: str, uid: str, token: str) -> list[httpx.Request]:
    p = provider(name)  # fresh: ChatKitty caches its bearer between flows
    identity = ChatIdentity(uid=uid, name="N")
    chat_token = ChatToken(
        value=token,
        uid=uid,
        provider=p.name,
        issued_at=utcnow(),
        expires_at=None,
        data={"user_id": f"@{uid}:h", "device_id": "D"},
    )
    issue: Flow[Any] = p.issue(identity, timedelta(hours=1))  # type: ignore[attr-defined]
    revoke: Flow[Any] = p.revoke(chat_token)  # type: ignore[attr-defined]
    return requests_of(issue) + requests_of(revoke)


def _segments(request: httpx.Request) -> list[str]:
    return request.url.raw_path.split(b"?")[0].decode("ascii").split("/")


HTTP_PROVIDERS = ["chatcamp", "chatkitty", "cometchat", "matrix-admin", "matrix-jwt", "sendbird"]
HTTP_PROVIDERS += ["stream"]


@pytest.mark.parametrize("name", HTTP_PROVIDERS)
@given(data=st.data())
def test_uids_and_tokens_reach_urls_only_as_encoded_segments(name: str, data: Any) -> None:
    p = PROVIDERS[name]
    tricky = st.sampled_from([".", "..", "a/b", "a?b=c", "a#b", "%2e%2e", "a%2Fb", "@x:y", "+"])
    uid = data.draw(
        st.one_of(tricky, st.from_regex(p.uid_rules.pattern, fullmatch=True), st.text())
    )
    # Tokens come from the provider: printable ASCII (they travel in headers too).
    token = data.draw(
        st.one_of(tricky, st.text(alphabet=string.printable, min_size=1, max_size=30))
    )
    try:
        p.uid_rules.validate(uid, p.name)
    except InvalidUIDError:
        return
    try:
        check_token_value(token)  # what every provider checks before a token is stored
    except InvalidTokenError:
        return
    reference = flows(name, PROBE, PROBE + "tok")
    actual = flows(name, uid, token)
    assert [r.method for r in actual] == [r.method for r in reference]
    for ref, got in zip(reference, actual, strict=True):
        ref_segments, got_segments = _segments(ref), _segments(got)
        # No extra segment, no dot-segment, no query smuggled in through a UID or a token.
        assert len(got_segments) == len(ref_segments), (ref.url, got.url)
        for ref_segment, got_segment in zip(ref_segments, got_segments, strict=True):
            expected = (
                urllib.parse.unquote(ref_segment).replace(PROBE + "tok", token).replace(PROBE, uid)
            )
            assert urllib.parse.unquote(got_segment) == expected
            assert got_segment not in (".", "..")
        assert len(got.url.params.multi_items()) == len(ref.url.params.multi_items())
