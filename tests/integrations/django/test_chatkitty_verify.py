"""ChatKitty's session check through the Django URLs: the emulator's chat function POSTs to
the live server's verify URL, before and after the app logout."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from chatauth.testing.chatkitty import (
    DEFAULT_API_KEY,
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    ChatKittyEmulator,
)
from tests.integrations.django.site import csrf_token
from tests.integrations.django.test_live_server import log_in

#: The verify URL takes JSON only (415 otherwise).
JSON = {"Content-Type": "application/json"}

pytestmark = pytest.mark.django_db(transaction=True)


def test_verify_url_allows_the_live_session_and_refuses_it_after_logout(
    live_server: Any, user: Any, settings: Any, chatkitty_emulator: ChatKittyEmulator
) -> None:
    assert chatkitty_emulator.url is not None
    settings.CHATAUTH = {
        "PROVIDER": "chatkitty",
        "CHATKITTY_API_KEY": DEFAULT_API_KEY,
        "CHATKITTY_CLIENT_ID": DEFAULT_CLIENT_ID,
        "CHATKITTY_CLIENT_SECRET": DEFAULT_CLIENT_SECRET,
        "CHATKITTY_BASE_URL": chatkitty_emulator.base_url,
        "CHATKITTY_AUTH_URL": chatkitty_emulator.url + "/oauth/token",
    }
    verify_url = live_server.url + "/chat/chatkitty/verify"
    with httpx.Client(base_url=live_server.url) as client:
        log_in(client, "alice", "alice-password")
        body = client.get("/chat/token").json()
        params = {"token": body["token"]}
        assert chatkitty_emulator.start_session(body["uid"], params, verify_url)
        assert not chatkitty_emulator.start_session("user-mallory", params, verify_url)
        page = client.get("/accounts/login/")
        client.post("/accounts/logout/", data={"csrfmiddlewaretoken": csrf_token(page.text)})
    assert not chatkitty_emulator.start_session(body["uid"], params, verify_url)
    assert httpx.post(verify_url, content=b"not json", headers=JSON).status_code == 400


def test_verify_url_is_404_for_other_providers(live_server: Any) -> None:
    answer = httpx.post(live_server.url + "/chat/chatkitty/verify", json={"username": "x"})
    assert answer.status_code == 404
