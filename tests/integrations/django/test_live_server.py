"""The adapter behind a real HTTP server: pytest-django's ``live_server`` (Django's threaded
WSGI server) with the test settings; real login form, token endpoint, logout."""

from __future__ import annotations

from typing import Any

import httpx
import jwt
import pytest
from chatauth.integrations.django.models import ChatToken

from chatauth.testing import canary
from tests.integrations.django.site import csrf_token

SECRET = canary.secret("django-tests-jwt-secret")

pytestmark = pytest.mark.django_db(transaction=True)


def log_in(client: httpx.Client, username: str, password: str) -> None:
    page = client.get("/accounts/login/")
    response = client.post(
        "/accounts/login/",
        data={
            "csrfmiddlewaretoken": csrf_token(page.text),
            "username": username,
            "password": password,
        },
    )
    assert response.status_code == 302, response.text[:300]


def test_login_token_logout_over_http(live_server: Any, user: Any) -> None:
    with httpx.Client(base_url=live_server.url) as client:
        anonymous = client.get("/chat/token")
        assert anonymous.status_code == 401
        assert anonymous.headers["content-type"] == "application/json"
        log_in(client, "alice", "alice-password")
        answer = client.get("/chat/token")
        assert answer.status_code == 200
        assert "no-store" in answer.headers["cache-control"]
        body = answer.json()
        assert jwt.decode(body["token"], SECRET, algorithms=["HS256"])["sub"] == f"user-{user.pk}"
        assert client.get("/async/").json()["token"] == body["token"]
        assert ChatToken.objects.count() == 1
        page = client.get("/accounts/login/")  # any page with a CSRF token for the logout form
        client.post("/accounts/logout/", data={"csrfmiddlewaretoken": csrf_token(page.text)})
        assert ChatToken.objects.count() == 0
        assert client.get("/chat/token").status_code == 401


@pytest.mark.synapse
def test_matrix_token_over_http_dies_at_logout(
    live_server: Any, user: Any, settings: Any, synapse: Any
) -> None:
    settings.CHATAUTH = {
        "PROVIDER": "matrix",
        "MATRIX_HOMESERVER_URL": synapse.base_url,
        "MATRIX_JWT_SECRET": synapse.jwt_secret,
    }
    with httpx.Client(base_url=live_server.url) as client:
        log_in(client, "alice", "alice-password")
        token = client.get("/chat/token").json()["token"]
        assert synapse.whoami(token).json()["user_id"] == f"@user-{user.pk}:localhost"
        page = client.get("/accounts/login/")
        client.post("/accounts/logout/", data={"csrfmiddlewaretoken": csrf_token(page.text)})
    assert synapse.whoami(token).json()["errcode"] == "M_UNKNOWN_TOKEN"
