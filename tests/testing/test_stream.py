"""Stream emulator over real HTTP: upsert, revocation cut-offs, auth errors, client check."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from typing import Any

import httpx
import jwt
import pytest

from chatauth.testing.stream import DEFAULT_API_KEY, DEFAULT_API_SECRET, StreamEmulator
from tests.testing import _loopback as loopback
from tests.testing._clock import T0, Clock


def user_token(user_id: str, secret: str = DEFAULT_API_SECRET, **claims: Any) -> str:
    # What stream-chat-python's create_token produces.
    return jwt.encode({**claims, "user_id": user_id}, secret, algorithm="HS256")


def rfc3339(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).isoformat().replace("+00:00", "Z")


def stream_error(response: httpx.Response, status: int) -> int:
    body = response.json()
    assert response.status_code == status
    assert body["StatusCode"] == status
    assert body["message"]
    assert "duration" in body
    assert body["more_info"].startswith("https://")
    return int(body["code"])


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def emulator(
    clock: Clock, serve_emulator: Callable[[StreamEmulator], StreamEmulator]
) -> StreamEmulator:
    return serve_emulator(StreamEmulator(clock=clock))


@pytest.fixture
def api(emulator: StreamEmulator) -> Iterator[httpx.Client]:
    with loopback.client(
        base_url=emulator.base_url,
        params={"api_key": DEFAULT_API_KEY},
        headers={"Stream-Auth-Type": "jwt", "Authorization": emulator.server_token()},
        timeout=5,
    ) as client:
        yield client


def test_upsert_users(api: httpx.Client, emulator: StreamEmulator) -> None:
    response = api.post(
        "/users",
        json={
            "users": {
                "alice": {"id": "alice", "name": "Alice", "image": "https://example.com/a.png"},
                "Bob@example_1-2": {"id": "Bob@example_1-2"},
            }
        },
    )
    assert response.status_code == 201
    body = response.json()
    assert set(body["users"]) == {"alice", "Bob@example_1-2"}
    assert body["users"]["alice"]["name"] == "Alice"
    assert body["users"]["alice"]["role"] == "user"
    assert "duration" in body
    created = body["users"]["alice"]["created_at"]
    # An upsert again keeps created_at and replaces the fields.
    again = api.post("/users", json={"users": {"alice": {"id": "alice", "name": "A."}}})
    assert again.json()["users"]["alice"]["created_at"] == created
    assert emulator.users["alice"]["name"] == "A."


def test_user_ids_are_case_sensitive(api: httpx.Client, emulator: StreamEmulator) -> None:
    api.post("/users", json={"users": {"carol": {"id": "carol"}, "Carol": {"id": "Carol"}}})
    assert set(emulator.users) == {"carol", "Carol"}


@pytest.mark.parametrize("uid", ["has space", "dot.ted", "x" * 256, "slash/ed", ""])
def test_invalid_user_id(api: httpx.Client, uid: str) -> None:
    response = api.post("/users", json={"users": {uid: {"id": uid}}})
    assert stream_error(response, 400) == 4


def test_upsert_input_errors(api: httpx.Client) -> None:
    assert stream_error(api.post("/users", json={}), 400) == 4
    assert stream_error(api.post("/users", json={"users": {"a": {"id": "b"}}}), 400) == 4
    many = {f"u{i}": {"id": f"u{i}"} for i in range(101)}
    assert stream_error(api.post("/users", json={"users": many}), 400) == 4
    assert api.post("/users", json={"users": dict(list(many.items())[:100])}).status_code == 201


def test_server_auth_errors(emulator: StreamEmulator) -> None:
    url = emulator.base_url + "/users"
    body = {"users": {"a": {"id": "a"}}}
    good = {"Stream-Auth-Type": "jwt", "Authorization": emulator.server_token()}
    assert stream_error(loopback.post(url, json=body, headers=good), 401) == 2  # no api_key
    params = {"api_key": DEFAULT_API_KEY}
    assert (
        stream_error(loopback.post(url, json=body, headers=good, params={"api_key": "other"}), 401)
        == 2
    )
    assert (
        stream_error(
            loopback.post(
                url, json=body, params=params, headers={"Authorization": emulator.server_token()}
            ),
            401,
        )
        == 5
    )
    assert (
        stream_error(
            loopback.post(url, json=body, params=params, headers={"Stream-Auth-Type": "jwt"}), 401
        )
        == 5
    )
    forged = jwt.encode(
        {"server": True}, "another-secret-of-sufficient-length!!", algorithm="HS256"
    )
    assert (
        stream_error(
            loopback.post(url, json=body, params=params, headers={**good, "Authorization": forged}),
            401,
        )
        == 43
    )
    assert (
        stream_error(
            loopback.post(
                url, json=body, params=params, headers={**good, "Authorization": "garbage"}
            ),
            401,
        )
        == 5
    )
    # A user token is not a server token.
    assert (
        stream_error(
            loopback.post(
                url, json=body, params=params, headers={**good, "Authorization": user_token("a")}
            ),
            403,
        )
        == 17
    )


def test_connect_user_checks(emulator: StreamEmulator, clock: Clock) -> None:
    assert emulator.connect_user(user_token("dan")) == (True, None)
    assert emulator.connect_user(user_token("dan", iat=int(T0), exp=int(T0) + 60)) == (True, None)
    assert emulator.connect_user(user_token("dan", exp=int(T0) - 1)) == (False, 40)
    assert emulator.connect_user(user_token("dan", nbf=int(T0) + 60)) == (False, 41)
    assert emulator.connect_user(user_token("dan", iat=int(T0) + 60)) == (False, 42)
    wrong = user_token("dan", secret="another-secret-of-sufficient-length!!")
    assert emulator.connect_user(wrong) == (False, 43)
    no_user = jwt.encode({"sub": "dan"}, DEFAULT_API_SECRET, algorithm="HS256")
    assert emulator.connect_user(no_user) == (False, 5)
    assert emulator.connect_user("not-a-jwt") == (False, 5)


def test_revoke_tokens_issued_before(
    api: httpx.Client, emulator: StreamEmulator, clock: Clock
) -> None:
    api.post("/users", json={"users": {"erin": {"id": "erin"}, "fay": {"id": "fay"}}})
    laptop = user_token("erin", iat=int(T0))
    phone = user_token("erin", iat=int(T0) + 5)
    no_iat = user_token("erin")
    other_user = user_token("fay", iat=int(T0))
    clock.now = T0 + 10.5
    response = api.patch(
        "/users",
        json={
            "users": [{"id": "erin", "set": {"revoke_tokens_issued_before": rfc3339(clock.now)}}]
        },
    )
    assert response.status_code == 200
    assert response.json()["users"]["erin"]["revoke_tokens_issued_before"].startswith(
        "2023-11-14T22:13:30.5"
    )
    assert emulator.revoked_before("erin") == T0 + 10.5
    # User-wide: every earlier token of erin is dead, with code 40; fay is untouched.
    assert emulator.connect_user(laptop) == (False, 40)
    assert emulator.connect_user(phone) == (False, 40)
    assert emulator.connect_user(no_iat) == (False, 40)
    assert emulator.connect_user(other_user) == (True, None)
    # A token minted after the cut-off works.
    clock.now = T0 + 12
    assert emulator.connect_user(user_token("erin", iat=int(clock.now))) == (True, None)
    # null lifts the cut-off.
    api.patch(
        "/users", json={"users": [{"id": "erin", "set": {"revoke_tokens_issued_before": None}}]}
    )
    assert emulator.connect_user(laptop) == (True, None)


def test_same_second_token_after_cutoff_is_revoked(
    api: httpx.Client, emulator: StreamEmulator, clock: Clock
) -> None:
    # Documented emulator decision: iat is whole seconds, the cut-off is not.
    api.post("/users", json={"users": {"gus": {"id": "gus"}}})
    clock.now = T0 + 0.4
    api.patch(
        "/users",
        json={"users": [{"id": "gus", "set": {"revoke_tokens_issued_before": rfc3339(clock.now)}}]},
    )
    clock.now = T0 + 0.6
    assert emulator.connect_user(user_token("gus", iat=int(clock.now))) == (False, 40)


def test_partial_update_errors(api: httpx.Client) -> None:
    response = api.patch(
        "/users",
        json={"users": [{"id": "nobody", "set": {"revoke_tokens_issued_before": rfc3339(T0)}}]},
    )
    assert stream_error(response, 404) == 16
    api.post("/users", json={"users": {"hal": {"id": "hal"}}})
    bad_time = api.patch(
        "/users",
        json={"users": [{"id": "hal", "set": {"revoke_tokens_issued_before": "yesterday"}}]},
    )
    assert stream_error(bad_time, 400) == 4
    naive = api.patch(
        "/users",
        json={
            "users": [{"id": "hal", "set": {"revoke_tokens_issued_before": "2024-01-01T00:00:00"}}]
        },
    )
    assert stream_error(naive, 400) == 4
    assert stream_error(api.patch("/users", json={"users": []}), 400) == 4


def test_partial_update_set_and_unset(api: httpx.Client, emulator: StreamEmulator) -> None:
    api.post("/users", json={"users": {"ivy": {"id": "ivy", "name": "Ivy", "team": "red"}}})
    api.patch("/users", json={"users": [{"id": "ivy", "set": {"name": "I."}, "unset": ["team"]}]})
    assert emulator.users["ivy"]["name"] == "I."
    assert "team" not in emulator.users["ivy"]


def test_app_wide_revocation(api: httpx.Client, emulator: StreamEmulator, clock: Clock) -> None:
    token = user_token("jo", iat=int(T0))
    clock.now = T0 + 5
    assert (
        api.patch("/app", json={"revoke_tokens_issued_before": rfc3339(T0 + 1)}).status_code == 200
    )
    assert emulator.app_revoked_before == T0 + 1
    assert emulator.connect_user(token) == (False, 40)
    api.patch("/app", json={"revoke_tokens_issued_before": None})
    assert emulator.connect_user(token) == (True, None)
    assert stream_error(api.patch("/app", json={"revoke_tokens_issued_before": 5}), 400) == 4


def test_query_users_as_the_sdk_sends_it(api: httpx.Client, emulator: StreamEmulator) -> None:
    """``query_users`` (GET /users?payload=...) lists matching users, an empty list for none."""

    def query(payload: Any) -> httpx.Response:
        return api.get("/users", params={"payload": json.dumps(payload)})

    assert (
        query({"limit": 1, "filter_conditions": {"id": {"$eq": "alice"}}, "sort": []}).json()[
            "users"
        ]
        == []
    )
    api.post("/users", json={"users": {u: {"id": u, "name": u.upper()} for u in ("alice", "bo")}})
    found = query({"limit": 1, "filter_conditions": {"id": {"$eq": "alice"}}, "sort": []})
    assert found.status_code == 200
    assert [(u["id"], u["name"]) for u in found.json()["users"]] == [("alice", "ALICE")]
    both = query({"filter_conditions": {"id": {"$in": ["alice", "bo", "nobody"]}}})
    assert [u["id"] for u in both.json()["users"]] == ["alice", "bo"]
    assert [u["id"] for u in query({"filter_conditions": {"id": "bo"}}).json()["users"]] == ["bo"]
    for bad in ({}, {"filter_conditions": {"name": "x"}}, {"filter_conditions": {"id": 5}}):
        assert stream_error(query(bad), 400) == 4
    assert stream_error(api.get("/users", params={"payload": "{not json"}), 400) == 4
    assert stream_error(loopback.get(emulator.base_url + "/users"), 401) == 2
