"""Stream specifics: the SDK oracle, ``exp`` in absolute Unix seconds, the user upkeep and the
user-wide revocation cut-off."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import httpx
import jwt as pyjwt
import pytest
from stream_chat import StreamChat

from chatauth import ChatAuth, ChatIdentity, ConfigurationError, ProviderError, from_settings
from chatauth.http import run_flow
from chatauth.providers.stream import StreamProvider, revocation_cutoff
from chatauth.stores.memory import MemoryStore
from chatauth.testing import canary
from chatauth.testing.stream import DEFAULT_API_KEY, DEFAULT_API_SECRET, StreamEmulator

SECRET = canary.secret("stream-oracle-secret")


@pytest.mark.parametrize(
    ("user_id", "exp", "iat", "claims"),
    [
        ("alice", 1_900_000_000, 1_899_996_400, {"jti": "abc"}),
        ("bob-42@x", 1_700_000_123, 1_700_000_000, {}),
        ("carol", None, None, {}),
        ("dave_9", 1_800_000_000, None, {"role": "admin", "jti": "z"}),
    ],
)
def test_token_is_byte_for_byte_the_sdk_token(
    user_id: str, exp: int | None, iat: int | None, claims: dict[str, str]
) -> None:
    ours = StreamProvider("key", SECRET).create_token(user_id, exp=exp, iat=iat, **claims)
    theirs = StreamChat(api_key="key", api_secret=SECRET).create_token(
        user_id, exp=exp, iat=iat, **claims
    )
    assert ours == theirs


def test_issued_token_equals_the_sdk_token_for_its_claims(stream_emulator: StreamEmulator) -> None:
    provider = StreamProvider(
        DEFAULT_API_KEY, DEFAULT_API_SECRET, base_url=stream_emulator.base_url
    )
    with httpx.Client() as client:
        token = run_flow(
            provider.issue(ChatIdentity("alice"), timedelta(minutes=30)), client, provider="stream"
        )
    claims = pyjwt.decode(token.value, DEFAULT_API_SECRET, algorithms=["HS256"])
    oracle = StreamChat(api_key=DEFAULT_API_KEY, api_secret=DEFAULT_API_SECRET).create_token(
        "alice", exp=claims["exp"], iat=claims["iat"], jti=claims["jti"]
    )
    assert token.value == oracle


def test_exp_is_absolute_unix_seconds(stream_emulator: StreamEmulator) -> None:
    provider = StreamProvider(
        DEFAULT_API_KEY, DEFAULT_API_SECRET, base_url=stream_emulator.base_url
    )
    with httpx.Client() as client:
        token = run_flow(
            provider.issue(ChatIdentity("alice"), timedelta(minutes=20)), client, provider="stream"
        )
    claims = pyjwt.decode(token.value, DEFAULT_API_SECRET, algorithms=["HS256"])
    assert isinstance(claims["exp"], int) and isinstance(claims["iat"], int)
    assert claims["exp"] - claims["iat"] == 20 * 60  # seconds, not ms, not relative
    assert claims["iat"] == int(token.issued_at.timestamp())
    assert token.expires_at == datetime.fromtimestamp(claims["exp"], timezone.utc)
    assert abs(claims["iat"] - datetime.now(timezone.utc).timestamp()) < 60


def test_user_is_created_then_updated_without_losing_fields(
    stream_emulator: StreamEmulator,
) -> None:
    chat = ChatAuth(
        StreamProvider(DEFAULT_API_KEY, DEFAULT_API_SECRET, base_url=stream_emulator.base_url),
        MemoryStore(),
    )
    chat.get_session(ChatIdentity("alice", name="Alice", avatar="https://img/a.png"), "s1")
    assert stream_emulator.users["alice"]["name"] == "Alice"
    assert stream_emulator.users["alice"]["image"] == "https://img/a.png"
    assert stream_emulator.calls.count_of("POST", "/users") == 1
    # A field set by the app elsewhere survives the next login (partial update, not upsert).
    stream_emulator._users["alice"]["team"] = "blue"
    chat.get_session(ChatIdentity("alice", name="Alice B."), "s2")
    assert stream_emulator.users["alice"]["name"] == "Alice B."
    assert stream_emulator.users["alice"]["team"] == "blue"
    assert stream_emulator.calls.count_of("POST", "/users") == 1
    chat.close()


def test_existence_is_asked_with_the_sdks_query_users(stream_emulator: StreamEmulator) -> None:
    """The lookup is the SDK's ``query_users({"id": {"$eq": uid}}, limit=1)`` request, and a
    user it does not find is upserted, one it finds partially updated: no error code of
    another call decides."""
    sdk = StreamChat(api_key=DEFAULT_API_KEY, api_secret=DEFAULT_API_SECRET)
    sent: list[tuple[str, dict[str, str]]] = []
    sdk.get = lambda path, params=None: sent.append((path, params))  # type: ignore[method-assign]
    sdk.query_users({"id": {"$eq": "alice"}}, limit=1)
    provider = StreamProvider(
        DEFAULT_API_KEY, DEFAULT_API_SECRET, base_url=stream_emulator.base_url
    )
    flow = provider.issue(ChatIdentity("alice"), timedelta(hours=1))
    query = next(flow)
    assert (query.method, query.url.path) == ("GET", "/users")
    assert query.url.params["payload"] == sent[0][1]["payload"]
    assert query.url.params["api_key"] == DEFAULT_API_KEY
    # Against the emulator: the unknown user is found missing and upserted...
    chat = ChatAuth(provider, MemoryStore())
    chat.get_session(ChatIdentity("alice", name="Alice"), "s1")
    assert [(c.method, c.path) for c in stream_emulator.calls] == [
        ("GET", "/users"),
        ("POST", "/users"),
    ]
    # ...a known one updated; with nothing to set, only looked up.
    chat.get_session(ChatIdentity("alice", name="Alice B."), "s2")
    chat.get_session(ChatIdentity("alice"), "s3")
    assert [(c.method, c.path) for c in stream_emulator.calls][2:] == [
        ("GET", "/users"),
        ("PATCH", "/users"),
        ("GET", "/users"),
    ]
    assert stream_emulator.calls.count_of("PATCH", "/users") == 1
    chat.close()


def test_a_user_the_query_does_not_list_is_upserted_whatever_patch_would_say() -> None:
    """No branch rests on the emulator's 404 code 16: an empty query result alone leads to the
    upsert, and a query listing the user to the partial update."""
    provider = StreamProvider(DEFAULT_API_KEY, DEFAULT_API_SECRET)
    flow = provider.issue(ChatIdentity("bob", name="Bob"), timedelta(hours=1))
    query = next(flow)
    upsert = flow.send(httpx.Response(200, json={"users": []}, request=query))
    assert (upsert.method, upsert.url.path) == ("POST", "/users")
    flow = provider.issue(ChatIdentity("bob", name="Bob"), timedelta(hours=1))
    query = next(flow)
    patch = flow.send(httpx.Response(200, json={"users": [{"id": "bob"}]}, request=query))
    assert (patch.method, patch.url.path) == ("PATCH", "/users")


def test_end_session_is_user_wide(stream_emulator: StreamEmulator) -> None:
    chat = ChatAuth(
        StreamProvider(DEFAULT_API_KEY, DEFAULT_API_SECRET, base_url=stream_emulator.base_url),
        MemoryStore(),
    )
    laptop = chat.get_session(ChatIdentity("alice"), "laptop").token
    phone = chat.get_session(ChatIdentity("alice"), "phone").token
    dropped = chat.end_session(ChatIdentity("alice"), "laptop")
    assert {t.value for t in dropped} == {laptop.value, phone.value}
    assert stream_emulator.connect_user(laptop.value) == (False, 40)
    assert stream_emulator.connect_user(phone.value) == (False, 40)
    assert chat.store.sessions(uid="alice") == []
    # One PATCH revoked both: the cut-off is per user.
    assert stream_emulator.revoked_before("alice") is not None
    chat.close()


def test_cutoff_kills_the_revoked_token_and_spares_later_seconds() -> None:
    issued = datetime(2026, 1, 1, 12, 0, 5, 900_000, tzinfo=timezone.utc)
    # Logout in the same second as the issue: the cut-off moves past the token's iat.
    same = revocation_cutoff(issued, issued + timedelta(milliseconds=50))
    assert same == datetime(2026, 1, 1, 12, 0, 6, tzinfo=timezone.utc)
    assert int(issued.timestamp()) < same.timestamp()
    # Logout minutes later: cut-off is "now" in whole seconds, so a token minted for a new
    # login in a later second (iat >= cut-off) is not refused.
    later = revocation_cutoff(issued, issued + timedelta(minutes=3, milliseconds=300))
    assert later == datetime(2026, 1, 1, 12, 3, 6, tzinfo=timezone.utc)
    assert later.microsecond == 0


def test_bad_secret_maps_stream_code(stream_emulator: StreamEmulator) -> None:
    provider = StreamProvider(DEFAULT_API_KEY, "x" * 40, base_url=stream_emulator.base_url)
    with httpx.Client() as client, pytest.raises(ProviderError) as info:
        run_flow(
            provider.issue(ChatIdentity("alice"), timedelta(hours=1)), client, provider="stream"
        )
    assert (info.value.status, info.value.code) == (401, "43")
    assert "x" * 40 not in str(info.value) + repr(info.value)


def test_settings_and_client_config() -> None:
    chat = from_settings(
        {
            "PROVIDER": "stream",
            "STREAM_API_KEY": "pub",
            "STREAM_API_SECRET": "s3cr3t-value-" + "z" * 32,
            "STORE": "memory://",
        }
    )
    assert isinstance(chat.provider, StreamProvider)
    assert chat.provider.client_config() == {"api_key": "pub"}
    assert "s3cr3t-value" not in repr(chat.provider)
    with pytest.raises(ConfigurationError) as info:
        from_settings({"PROVIDER": "stream", "STREAM_API_KEY": "pub", "STORE": "memory://"})
    assert info.value.code == "ERROR_API_KEY_NOT_FOUND"
    assert info.value.setting == "STREAM_API_SECRET"
