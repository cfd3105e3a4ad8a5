"""What a request costs the database once its chat session is cached: the statements a
cached token request runs (the ORM store's one-row read, nothing written), and no chat work
at the response for a request that loads the app session and leaves it unchanged. Counted on
the test project's SQLite database with Django's own query capture."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from chatauth.integrations.django.models import ChatToken
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from chatauth.binding import SESSION_KEY
from chatauth.json_body import json_bytes

pytestmark = pytest.mark.django_db(transaction=True)

TOKEN_TABLE = ChatToken._meta.db_table


def statements(queries: CaptureQueriesContext) -> list[str]:
    return [query["sql"] for query in queries.captured_queries]


def test_a_cached_token_request_reads_one_row_and_writes_nothing(client: Client, user) -> None:
    client.force_login(user)
    first = client.get("/chat/token").json()
    with CaptureQueriesContext(connection) as queries:
        again = client.get("/chat/token")
    assert again.status_code == 200
    assert again.json()["token"] == first["token"]
    # The core's bytes for the session (encoded once while it is cached), not re-encoded
    # by JsonResponse, whose separators differ.
    assert again["Content-Type"] == "application/json"
    assert again.content == json_bytes(first)
    sql = statements(queries)
    # Reads only: no session save, no "served at" write (it was recorded a moment ago by
    # the issue), no transaction or savepoint around the read.
    assert all(s.lstrip().upper().startswith("SELECT") for s in sql), sql
    chat = [s for s in sql if TOKEN_TABLE in s]
    # One statement at most (none when the service answers from its own memory), by the
    # primary key, naming the payload and the served time only, never the whole row.
    assert len(chat) <= 1, chat
    for read in chat:
        assert f'"{TOKEN_TABLE}"."' not in read  # not the ORM's every-column SELECT
        assert read.count(" = ") == 1 and '"key" = ' in read
        for column in ("user_key", "fingerprint", "issued_at", "expires_at", "usable_until"):
            assert column not in read
    # Besides it, the app's own two reads (the session and the user) and nothing else.
    assert len(sql) - len(chat) == 2, sql


def test_a_request_that_leaves_the_session_unchanged_does_no_chat_work(
    client: Client, user
) -> None:
    client.force_login(user)
    assert client.get("/chat/token").status_code == 200
    held = client.session[SESSION_KEY]
    with CaptureQueriesContext(connection) as queries:
        response = client.get("/whoami/")
    assert response.json() == {"username": user.get_username()}
    # The session was loaded (for the user) and left as it was: the response start made no
    # binding and wrote nothing.
    assert not hasattr(response.wsgi_request, "_chatauth")
    assert all(s.lstrip().upper().startswith("SELECT") for s in statements(queries))
    assert client.session[SESSION_KEY] == held


def test_a_session_without_a_chat_id_gets_one_at_an_unchanged_request(client: Client, user) -> None:
    client.force_login(user)
    session = client.session
    session.pop(SESSION_KEY, None)  # a session from before chatauth was installed
    session.save()
    assert SESSION_KEY not in client.session
    response = client.get("/whoami/")
    assert response.status_code == 200
    # The view left the session alone, but it held no id: the response start made one.
    assert hasattr(response.wsgi_request, "_chatauth")
    assert SESSION_KEY in client.session
    assert ChatToken.objects.count() == 0  # and no token was issued for it


def test_a_kept_chat_session_is_read_without_a_binding_and_a_logout_after_it_ends_it(
    client: Client, user
) -> None:
    client.force_login(user)
    token = client.get("/chat/token").json()["token"]
    assert client.get("/chat/token").json()["token"] == token  # read back: now kept
    response = client.get("/chat/token")
    assert response.json()["token"] == token
    # Served from the process: no binding made, the slot's value it was read under noted.
    assert not hasattr(response.wsgi_request, "_chatauth")
    assert response.wsgi_request._chatauth_kept[1] == client.session[SESSION_KEY]
    # Read, then logged out in the same view: the binding the logout makes takes the kept
    # session over and ends it.
    response = client.post("/read-then-logout/")
    assert response.json() == {"uid": f"user-{user.pk}"}
    assert ChatToken.objects.count() == 0
    assert SESSION_KEY not in client.session


def test_error_answers_are_the_cores_bytes_too(client: Client) -> None:
    response = client.get("/chat/token")  # nobody logged in
    assert response.status_code == 401
    assert response["Content-Type"] == "application/json"
    assert response.content == json_bytes(response.json())
    assert response.json()["error"]["code"] == "ERROR_NOT_AUTHENTICATED"


def test_the_core_is_handed_the_user_not_the_lazy_object_around_it(
    client: Client, user, mapped_users: Callable[[], list[object]]
) -> None:
    from django.utils.functional import LazyObject

    seen = mapped_users()
    client.force_login(user)
    assert client.get("/chat/token").status_code == 200
    # Each attribute the mapper reads through request.user's SimpleLazyObject would run
    # Python-level __getattribute__ and __getattr__; a missing one (chat_uid) fails twice.
    assert seen and all(type(u) is type(user) for u in seen), [type(u) for u in seen]
    assert not any(isinstance(u, LazyObject) for u in seen)
