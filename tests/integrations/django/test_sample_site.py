"""The sample site as a user runs it (``migrate``, then ``runserver`` or uvicorn), end to end:
the embedded defaults (JWT provider, database store), and the Matrix provider against a real
Synapse: log in -> the token works at ``whoami`` and can send a room message -> log out ->
``M_UNKNOWN_TOKEN``. Also two server processes racing for one session's first token."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from tests.integrations.django.site import SampleSite, log_in, log_out
from tests.servers.deadlines import REQUEST_DEADLINE

SERVERS = ["runserver", "uvicorn"]


@pytest.fixture
def sites(tmp_path: Path) -> Iterator[list[SampleSite]]:
    started: list[SampleSite] = []
    try:
        yield started
    finally:
        _stop_all(started)


def _stop_all(sites: list[SampleSite]) -> None:
    """Stop every site, even when stopping one of them fails (then raise that)."""
    if sites:
        try:
            sites.pop().stop()
        finally:
            _stop_all(sites)


def matrix_env(synapse: Any) -> dict[str, str]:
    return {
        "CHATAUTH_PROVIDER": "matrix",
        "CHATAUTH_MATRIX_HOMESERVER_URL": synapse.base_url,
        "CHATAUTH_MATRIX_SERVER_NAME": synapse.server_name,
        "CHATAUTH_MATRIX_JWT_SECRET": synapse.jwt_secret,
    }


@pytest.mark.parametrize("server", SERVERS)
def test_embedded_defaults_jwt(server: str, tmp_path: Path, sites: list[SampleSite]) -> None:
    site = SampleSite(server, tmp_path / "db.sqlite3", {"CHATAUTH_JWT_SECRET": "s" * 32})
    sites.append(site.migrate().start())
    with httpx.Client(base_url=site.base_url, timeout=REQUEST_DEADLINE) as client:
        assert client.get("/chat/token").status_code == 401
        log_in(client, "alice", "wonderland")
        page = client.get("/chat/")
        assert 'data-token-url="/chat/token"' in page.text
        assert client.get("/static/chat.js").status_code == 200
        body = client.get("/chat/token").json()
        assert (body["provider"], body["uid"]) == ("jwt", "user-alice")
        assert jwt.decode(body["token"], "s" * 32, algorithms=["HS256"])["sub"] == "user-alice"
        assert client.get("/whoami").json()["uid"] == "user-alice"  # the async view
        log_out(client)
        assert client.get("/chat/token").status_code == 401
    result = site.manage("chatauth_check")
    assert result.returncode == 0, result.stderr
    assert "chatauth: OK" in result.stdout


@pytest.mark.synapse
@pytest.mark.parametrize("server", SERVERS)
def test_synapse_login_chat_logout(
    server: str, tmp_path: Path, sites: list[SampleSite], synapse: Any
) -> None:
    site = SampleSite(server, tmp_path / "db.sqlite3", matrix_env(synapse))
    sites.append(site.migrate().start())
    with httpx.Client(base_url=site.base_url, timeout=REQUEST_DEADLINE) as client:
        log_in(client, "bob", "builder")
        body = client.get("/chat/token").json()
        assert body["provider"] == "matrix"
        assert body["uid"] == "user-bob"
        assert body["client"]["homeserver_url"] == synapse.base_url
        token = body["token"]
        whoami = synapse.whoami(token)
        assert whoami.status_code == 200
        assert whoami.json()["user_id"] == "@user-bob:localhost"
        room = synapse.create_room(token)
        assert synapse.send_message(token, room, "hello from the Django sample").status_code == 200
        assert client.get("/chat/token").json()["token"] == token  # reused, not re-issued
        log_out(client)
    gone = synapse.whoami(token)
    assert gone.status_code == 401
    assert gone.json()["errcode"] == "M_UNKNOWN_TOKEN"


def devices(synapse: Any, user_id: str) -> int:
    response = httpx.get(
        synapse.url(f"/_synapse/admin/v2/users/{user_id}/devices"),
        headers={"Authorization": f"Bearer {synapse.admin_token}"},
        timeout=REQUEST_DEADLINE,
    )
    assert response.status_code == 200, response.text
    return int(response.json()["total"])


@pytest.mark.synapse
def test_two_server_processes_racing_for_one_session_issue_one_token(
    tmp_path: Path, sites: list[SampleSite], synapse: Any
) -> None:
    db = tmp_path / "db.sqlite3"
    wsgi = SampleSite("runserver", db, matrix_env(synapse)).migrate().start()
    sites.append(wsgi)
    sites.append(asgi := SampleSite("uvicorn", db, matrix_env(synapse)).start())
    user_id = "@user-alice:localhost"
    with httpx.Client(base_url=wsgi.base_url, timeout=REQUEST_DEADLINE) as client:
        log_in(client, "alice", "wonderland")
        before = devices(synapse, user_id) if _exists(synapse, user_id) else 0
        cookies = dict(client.cookies)
        answers: list[httpx.Response] = []
        barrier = threading.Barrier(4, timeout=REQUEST_DEADLINE)

        def fetch(base_url: str) -> None:
            with httpx.Client(base_url=base_url, cookies=cookies, timeout=REQUEST_DEADLINE) as one:
                barrier.wait()
                answers.append(one.get("/chat/token"))

        threads = [
            threading.Thread(target=fetch, args=(site.base_url,))
            for site in (wsgi, asgi, wsgi, asgi)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert [a.status_code for a in answers] == [200] * 4, [a.text for a in answers]
        assert len({a.json()["token"] for a in answers}) == 1
        # One JWT login at Synapse, so one new device for the user.
        assert devices(synapse, user_id) == before + 1
        log_out(client)


def _exists(synapse: Any, user_id: str) -> bool:
    response = httpx.get(
        synapse.url(f"/_synapse/admin/v2/users/{user_id}"),
        headers={"Authorization": f"Bearer {synapse.admin_token}"},
        timeout=REQUEST_DEADLINE,
    )
    return response.status_code == 200
