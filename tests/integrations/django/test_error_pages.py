"""No secret on Django's DEBUG error page (the technical 500 page) when a provider fails.

Every provider is configured with canary secrets that its emulator accepts, so the secrets are
really in flight; then the provider fails: a refusal (4xx) injected after authentication, a
refused credential, an unreachable homeserver, a UID the provider refuses. The adapter's own
views answer such errors as JSON, but any other code of the app calling the service lets them
through to Django, which with ``DEBUG = True`` renders
``django.views.debug.technical_500_response``: every frame's local variables, chained
exceptions included. That page is rendered for each failure and scanned for each secret and
every value derived from one.
"""

from __future__ import annotations

import base64
import hmac
import socket
from collections.abc import Callable
from typing import Any

import httpx
import jwt as pyjwt
import pytest
from chatauth.integrations.django.conf import get_service, reset
from django.test import RequestFactory
from django.views.debug import technical_500_response

from chatauth.config import from_settings
from chatauth.errors import ChatAuthError
from chatauth.testing import canary
from chatauth.testing.chatcamp import ChatCampEmulator
from chatauth.testing.chatkitty import ChatKittyEmulator
from chatauth.testing.cometchat import CometChatEmulator
from chatauth.testing.sendbird import SendbirdEmulator
from chatauth.testing.stream import StreamEmulator

pytestmark = pytest.mark.django_db

SECRETS = {
    name: canary.secret(f"error-page-{name}")
    for name in ("cometchat", "chatkitty", "chatcamp", "stream")
}
SECRETS |= {
    name: canary.secret(f"error-page-{name}")
    for name in ("sendbird", "twilio", "jwt", "matrix-jwt", "matrix-admin")
}
HEX = "0123456789abcdef" * 2


def derived(secret: str) -> list[str]:
    """The secret and what is computed from it: encodings, signing keys, server tokens."""
    values = [secret, base64.b64encode(secret.encode()).decode()]
    values.append(base64.b64encode(f"chatkitty-client:{secret}".encode()).decode())
    values.append(hmac.new(secret.encode(), b"chatauth chatkitty authParams", "sha256").hexdigest())
    values.append(pyjwt.encode({"server": True}, secret, algorithm="HS256"))
    return values


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


#: A scenario serves what it needs and returns (CHATAUTH, the secrets the provider's server
#: issued, optionally a step run before the failing call).
Scenario = Callable[[Callable[[Any], Any]], tuple[Any, ...]]


def cometchat(serve: Callable[[Any], Any]) -> tuple[dict[str, Any], Callable[[], list[str]]]:
    emulator = serve(CometChatEmulator(api_key=SECRETS["cometchat"]))
    emulator.faults.status(403)
    settings = {
        "PROVIDER": "cometchat",
        "COMETCHAT_APP_ID": emulator.app_id,
        "COMETCHAT_API_KEY": SECRETS["cometchat"],
        "COMETCHAT_BASE_URL": emulator.base_url,
    }
    return settings, list


def _chatkitty(serve: Callable[[Any], Any], fault_path: str) -> tuple[dict[str, Any], Any]:
    emulator = serve(
        ChatKittyEmulator(client_id="chatkitty-client", client_secret=SECRETS["chatkitty"])
    )
    emulator.faults.status(403, path=fault_path)
    return _chatkitty_settings(emulator)


def _chatkitty_settings(emulator: ChatKittyEmulator) -> tuple[dict[str, Any], Any]:
    settings = {
        "PROVIDER": "chatkitty",
        "CHATKITTY_API_KEY": "public-api-key",
        "CHATKITTY_CLIENT_ID": "chatkitty-client",
        "CHATKITTY_CLIENT_SECRET": SECRETS["chatkitty"],
        "CHATKITTY_BASE_URL": emulator.base_url,
        "CHATKITTY_AUTH_URL": emulator.url + "/oauth/token",
    }
    # The Platform API bearer tokens the emulator handed out are secrets too.
    return settings, lambda: list(emulator._access_tokens)


def chatkitty_api(serve: Callable[[Any], Any]) -> tuple[dict[str, Any], Any]:
    return _chatkitty(serve, "/v1/users")


def chatkitty_oauth(serve: Callable[[Any], Any]) -> tuple[dict[str, Any], Any]:
    return _chatkitty(serve, "/oauth/token")


def chatkitty_renewal(serve: Callable[[Any], Any]) -> tuple[dict[str, Any], Any, Any]:
    """A cached bearer is refused (expired) and its renewal is refused: the frame renewing it
    still holds the old one."""
    emulator = serve(
        ChatKittyEmulator(client_id="chatkitty-client", client_secret=SECRETS["chatkitty"])
    )
    settings, issued = _chatkitty_settings(emulator)

    def prepare(user: Any) -> None:
        get_service().get_session(user, "another-app-session")
        emulator.expire_access_tokens()
        emulator.faults.status(403, path="/oauth/token")

    return settings, issued, prepare


def chatcamp(serve: Callable[[Any], Any]) -> tuple[dict[str, Any], Any]:
    emulator = serve(ChatCampEmulator(api_key=SECRETS["chatcamp"]))
    emulator.faults.status(403)
    settings = {
        "PROVIDER": "chatcamp",
        "CHATCAMP_APP_ID": emulator.app_id,
        "CHATCAMP_API_KEY": SECRETS["chatcamp"],
        "CHATCAMP_BASE_URL": emulator.base_url,
    }
    return settings, list


def stream(serve: Callable[[Any], Any]) -> tuple[dict[str, Any], Any]:
    emulator = serve(StreamEmulator(api_key="public-key", api_secret=SECRETS["stream"]))
    emulator.faults.status(403)
    settings = {
        "PROVIDER": "stream",
        "STREAM_API_KEY": "public-key",
        "STREAM_API_SECRET": SECRETS["stream"],
        "STREAM_BASE_URL": emulator.base_url,
    }
    return settings, list


def sendbird(serve: Callable[[Any], Any]) -> tuple[dict[str, Any], Any]:
    emulator = serve(SendbirdEmulator(api_token=SECRETS["sendbird"]))
    emulator.faults.status(403)
    settings = {
        "PROVIDER": "sendbird",
        "SENDBIRD_APPLICATION_ID": emulator.app_id,
        "SENDBIRD_API_TOKEN": SECRETS["sendbird"],
        "SENDBIRD_BASE_URL": emulator.base_url,
    }
    return settings, list


def bad_uid(user: Any) -> str:
    return "not a valid uid"


def twilio(serve: Callable[[Any], Any]) -> tuple[dict[str, Any], Any]:
    settings = {
        "PROVIDER": "twilio",
        "TWILIO_ACCOUNT_SID": "AC" + HEX,
        "TWILIO_API_KEY_SID": "SK" + HEX,
        "TWILIO_API_KEY_SECRET": SECRETS["twilio"],
        "TWILIO_SERVICE_SID": "IS" + HEX,
        "UID_MAPPER": bad_uid,
    }
    return settings, list


def jwt(serve: Callable[[Any], Any]) -> tuple[dict[str, Any], Any]:
    return {"PROVIDER": "jwt", "JWT_SECRET": SECRETS["jwt"], "UID_MAPPER": bad_uid}, list


def matrix_jwt(serve: Callable[[Any], Any]) -> tuple[dict[str, Any], Any]:
    settings = {
        "PROVIDER": "matrix",
        "MATRIX_HOMESERVER_URL": f"http://127.0.0.1:{closed_port()}",
        "MATRIX_JWT_SECRET": SECRETS["matrix-jwt"],
    }
    return settings, list


def matrix_admin(serve: Callable[[Any], Any]) -> tuple[dict[str, Any], Any]:
    settings = {
        "PROVIDER": "matrix",
        "MATRIX_HOMESERVER_URL": f"http://127.0.0.1:{closed_port()}",
        "MATRIX_MODE": "admin",
        "MATRIX_ADMIN_TOKEN": SECRETS["matrix-admin"],
    }
    return settings, list


SCENARIOS = [
    cometchat,
    chatkitty_api,
    chatkitty_oauth,
    chatkitty_renewal,
    chatcamp,
    stream,
    sendbird,
    twilio,
    jwt,
    matrix_jwt,
    matrix_admin,
]


def provider_failure(user: Any) -> ChatAuthError:
    """The error of a chat page's view: its traceback starts here, in a frame without the
    test's settings (the test's own frame, holding the canaries, is not the app's)."""
    try:
        get_service().get_session(user, "app-session-key-0123456789")
    except ChatAuthError as error:
        return error
    pytest.fail("the provider did not fail")


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.__name__)
def test_debug_500_page_of_a_provider_failure_shows_no_secret(
    scenario: Scenario, serve_emulator: Any, settings: Any, user: Any
) -> None:
    chat_settings, issued, *prepare = scenario(serve_emulator)
    settings.CHATAUTH = {**chat_settings, "RETRY_ATTEMPTS": 1}
    settings.DEBUG = True
    reset()
    for step in prepare:
        step(user)
    request = RequestFactory().get("/chat-page/", HTTP_ACCEPT="text/html")
    request.user = user
    try:
        error = provider_failure(user)
    finally:
        reset()
    response = technical_500_response(request, type(error), error, error.__traceback__)
    page = response.content.decode()
    # The technical page with the frames' local variables, down to the provider's.
    assert "Local vars" in page and "get_session" in page
    leaks = [name for name, secret in SECRETS.items() for value in derived(secret) if value in page]
    leaks += [f"issued:{value[:6]}" for value in issued() if value in page]
    # And no canary of any kind: Matrix's login JWT sat in the JWT flow's frame.
    leaks += canary.find(page)
    assert leaks == []


def test_debug_500_page_after_a_matrix_login_shows_no_access_token(user: Any) -> None:
    """Synapse logs the user in (an access token exists), then refuses the display name: the
    token the failed flow was holding is not on the page. The homeserver is an
    ``httpx.MockTransport``: Synapse itself never refuses this call."""
    access_token = canary.token("error-page-matrix-access-token")

    def homeserver(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/_matrix/client/v3/login":
            body = {"access_token": access_token, "user_id": "@user-alice:h", "device_id": "D"}
            return httpx.Response(200, json=body)
        return httpx.Response(403, json={"errcode": "M_FORBIDDEN", "error": "no"})

    chat = from_settings(
        {
            "PROVIDER": "matrix",
            "MATRIX_HOMESERVER_URL": "http://homeserver.invalid",
            "MATRIX_JWT_SECRET": SECRETS["matrix-jwt"],
            "NAME_ATTRIBUTE": "username",
            "STORE": "memory://",
        },
        transport=httpx.MockTransport(homeserver),
    )
    try:
        error = _failure_of(chat, user)
    finally:
        chat.close()
    request = RequestFactory().get("/chat-page/")
    page = technical_500_response(request, type(error), error, error.__traceback__).content
    assert b"Local vars" in page and b"_issue_jwt" in page
    assert access_token.encode() not in page
    assert SECRETS["matrix-jwt"].encode() not in page


def _failure_of(chat: Any, user: Any) -> ChatAuthError:
    try:
        chat.get_session(user, "app-session-key-0123456789")
    except ChatAuthError as error:
        return error
    pytest.fail("the provider did not fail")
