"""The Starlette sample app, served by a real uvicorn, against a real Synapse in both Matrix
modes (admin login-as and JWT login): tokens work at the homeserver, logout kills them,
outages answer 503 and queue revocations that ``revoke_pending`` completes later."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from chatauth import ChatAuth
from sample_projects.csrf import FIELD, token_in
from sample_projects.starlette_app import DEMO_USERS, create_app
from tests.integrations.starlette.helpers import serve_app
from tests.servers.deadlines import REQUEST_DEADLINE
from tests.servers.synapse import SynapseServer

pytestmark = pytest.mark.synapse

USERS = {**DEMO_USERS, "eve smith": "spaced-out"}


def matrix_settings(server: SynapseServer, mode: str, store: Path) -> dict[str, Any]:
    settings: dict[str, Any] = {
        "provider": "matrix",
        "matrix_homeserver_url": server.base_url,
        "matrix_server_name": server.server_name,
        "matrix_mode": mode,
        "store": f"sqlite:///{store}",
    }
    if mode == "admin":
        settings["matrix_admin_token"] = server.admin_token
    else:
        settings["matrix_jwt_secret"] = server.jwt_secret
        settings["matrix_jwt_algorithm"] = server.jwt_algorithm
    return settings


class Site:
    """The sample app served on 127.0.0.1; ``browser()`` opens a new app session."""

    def __init__(self, url: str, chatauth: ChatAuth) -> None:
        self.url = url
        self.chatauth = chatauth
        self.clients: list[httpx.Client] = []

    def browser(self, user: str | None = "alice") -> httpx.Client:
        client = httpx.Client(base_url=self.url, timeout=REQUEST_DEADLINE)
        self.clients.append(client)
        if user is not None:
            form = {"username": user, "password": USERS[user]}
            form[FIELD] = token_in(client.get("/login").text)  # the sample's CSRF token
            response = client.post("/login", data=form)
            assert response.status_code == 303, response.text
        return client


def log_out(client: httpx.Client) -> httpx.Response:
    """Submit the chat page's log-out form (with its CSRF token)."""
    return client.post("/logout", data={FIELD: token_in(client.get("/chat").text)})


@contextmanager
def sample_site(server: SynapseServer, mode: str, tmp_path: Path) -> Iterator[Site]:
    app = create_app(matrix_settings(server, mode, tmp_path / f"{mode}.sqlite3"), users=USERS)
    with serve_app(app) as url:
        site = Site(url, app.state.chatauth)
        try:
            yield site
        finally:
            for client in site.clients:
                client.close()


@pytest.fixture(params=["admin", "jwt"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def site(synapse: SynapseServer, mode: str, tmp_path: Path) -> Iterator[Site]:
    with sample_site(synapse, mode, tmp_path) as site:
        yield site


def token_of(client: httpx.Client) -> dict[str, Any]:
    response = client.get("/chat/token")
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body: dict[str, Any] = response.json()
    return body


def assert_dead(server: SynapseServer, token: str) -> None:
    response = server.whoami(token)
    assert response.status_code == 401, response.text
    assert response.json()["errcode"] == "M_UNKNOWN_TOKEN"


def test_login_token_works_at_synapse_and_logout_kills_it(
    site: Site, synapse: SynapseServer, mode: str
) -> None:
    client = site.browser("alice")
    body = token_of(client)
    assert (body["provider"], body["uid"]) == ("matrix", "user-alice")
    assert body["client"]["homeserver_url"] == synapse.base_url
    assert body["client"]["user_id"] == "@user-alice:localhost"
    secret = synapse.admin_token if mode == "admin" else synapse.jwt_secret
    assert secret not in str(body["client"])
    page = client.get("/chat")
    assert page.status_code == 200
    assert secret not in page.text and body["token"] not in page.text

    whoami = synapse.whoami(body["token"])
    assert whoami.status_code == 200, whoami.text
    assert whoami.json()["user_id"] == "@user-alice:localhost"
    if mode == "jwt":
        assert whoami.json()["device_id"] == body["client"]["device_id"]
    room = synapse.create_room(body["token"], name="starlette e2e")
    sent = synapse.send_message(body["token"], room, "hello from the Starlette sample")
    assert sent.status_code == 200, sent.text

    assert token_of(client)["token"] == body["token"]  # reused, not re-issued
    assert log_out(client).status_code == 303
    assert_dead(synapse, body["token"])
    assert client.get("/chat/token").status_code == 401


def test_two_app_sessions_hold_two_tokens_and_end_separately(
    site: Site, synapse: SynapseServer, mode: str
) -> None:
    laptop, phone = site.browser("alice"), site.browser("alice")
    one, two = token_of(laptop), token_of(phone)
    assert one["token"] != two["token"]
    if mode == "jwt":
        assert one["client"]["device_id"] != two["client"]["device_id"]
        devices = {synapse.whoami(t["token"]).json()["device_id"] for t in (one, two)}
        assert devices == {one["client"]["device_id"], two["client"]["device_id"]}

    assert log_out(laptop).status_code == 303
    assert_dead(synapse, one["token"])
    alive = synapse.whoami(two["token"])
    assert alive.status_code == 200 and alive.json()["user_id"] == "@user-alice:localhost"
    assert token_of(phone)["token"] == two["token"]


def test_a_uid_with_a_space_is_refused_with_422(site: Site) -> None:
    client = site.browser("eve smith")
    response = client.get("/chat/token")
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "ERROR_UID_WITH_SPACE"
    assert client.get("/").status_code == 200


def test_outage_503_then_queued_revocation_completes_after_restart(
    synapse_factory: Callable[..., SynapseServer], mode: str, tmp_path: Path
) -> None:
    server = synapse_factory()
    with sample_site(server, mode, tmp_path) as site:
        alice, bob = site.browser("alice"), site.browser("bob")
        token = token_of(alice)["token"]
        assert server.whoami(token).status_code == 200

        server.stop()
        response = bob.get("/chat/token")
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "ERROR_PROVIDER_UNAVAILABLE"
        assert int(response.headers["retry-after"]) >= 1
        assert response.headers["cache-control"] == "no-store"
        for path in ("/", "/chat", "/login", "/static/chat.js"):
            assert bob.get(path).status_code == 200, path
        assert token_of(alice)["token"] == token  # a stored token needs no homeserver

        # Logging out during the outage still answers, and queues the revocation.
        assert log_out(alice).status_code == 303
        assert site.chatauth.store.count_pending() == 1
        assert site.chatauth.store.sessions("matrix", "user-alice") == []

        server.restart()
        assert server.whoami(token).status_code == 200  # not revoked yet: it was queued
        report = site.chatauth.revoke_pending()
        assert (report.revoked, report.failed, report.remaining) == (1, 0, 0)
        assert_dead(server, token)
        assert token_of(bob)["uid"] == "user-bob"
