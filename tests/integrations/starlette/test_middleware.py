"""ChatAuthMiddleware, the token route and the logout helper, over ASGITransport and uvicorn."""

from __future__ import annotations

import gc
import logging
import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from chatauth.integrations.starlette import ChatAuthMiddleware, get_chat
from chatauth.integrations.starlette import chat as chat_module
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import HTTPConnection, Request
from starlette.responses import Response
from starlette.routing import Route

from chatauth import ChatAuth, ChatIdentity
from chatauth.binding import ChatBinding
from chatauth.errors import ConfigurationError
from chatauth.providers.matrix import MatrixProvider
from tests.integrations.starlette.helpers import (
    ROUTES,
    Browser,
    CountingStore,
    closed_port_url,
    header_user_app,
    make_app,
    run_asgi,
    websocket_json,
)

pytestmark = pytest.mark.usefixtures("store")


async def logged_in(browser: Browser, name: str = "alice") -> httpx.AsyncClient:
    client = browser()
    assert (await client.post(f"/login/{name}")).status_code == 200
    return client


async def token_of(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get("/chat/token")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def stored(chat: ChatAuth, uid: str = "user-alice") -> list[str]:
    return [t.value for t in chat.store.sessions(chat.provider.name, uid)]


# -- laziness ---------------------------------------------------------------------------------
async def test_requests_that_never_read_it_do_no_store_or_provider_work(
    browser: Browser, chat: ChatAuth, store: CountingStore
) -> None:
    client = await logged_in(browser)
    for _ in range(3):
        response = await client.get("/plain")
        assert response.json() == {"user": "alice", "loaded": False, "same": True}
    assert store.calls == []
    assert chat.provider.issued == 0  # type: ignore[attr-defined]

    await token_of(client)
    assert chat.provider.issued == 1  # type: ignore[attr-defined]
    assert "get" in store.calls

    # With a chat session id in the app session now, plain pages still cost nothing.
    store.calls.clear()
    for _ in range(3):
        assert (await client.get("/plain")).status_code == 200
    assert store.calls == []


async def asgi_call(app: Starlette, method: str, path: str, cookie: str) -> list[dict[str, Any]]:
    """One request straight into ``app`` (no client, no server thread): the messages sent."""
    scope = {"type": "http", "method": method, "path": path, "raw_path": path.encode()}
    scope |= {"query_string": b"", "headers": [(b"cookie", cookie.encode())]}
    return await run_asgi(app, scope, [{"type": "http.request", "body": b""}])


async def asgi_get(app: Starlette, method: str, path: str, cookie: str) -> tuple[int, str]:
    """:func:`asgi_call`'s ``(status, cookie)`` with the cookie the answer set, else the one
    sent."""
    sent = await asgi_call(app, method, path, cookie)
    for name, value in sent[0].get("headers", []):
        if name == b"set-cookie":
            cookie = value.decode().split(";", 1)[0]
    return sent[0]["status"], cookie


@pytest.fixture
def made(monkeypatch: pytest.MonkeyPatch) -> list[ChatBinding]:
    """Every :class:`ChatBinding` the Starlette adapter makes from now on."""
    bindings: list[ChatBinding] = []

    class Counted(ChatBinding):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            bindings.append(self)

    monkeypatch.setattr(chat_module, "ChatBinding", Counted)
    return bindings


async def test_requests_that_never_read_it_make_no_binding_and_leave_no_cycles(
    app: Starlette, store: CountingStore, made: list[ChatBinding]
) -> None:
    status, cookie = await asgi_get(app, "POST", "/login/alice", "")
    assert status == 200
    assert len(made) == 1  # the login answer's: the session changed, it gets its id
    status, cookie = await asgi_get(app, "GET", "/chat/token", cookie)
    assert status == 200
    made.clear()
    store.calls.clear()

    gc.collect()
    gc.disable()  # what the requests leave behind is counted below, not collected meanwhile
    try:
        for _ in range(5):
            assert (await asgi_get(app, "GET", "/plain", cookie))[0] == 200
        # Each request's scope holds its LazyChatSession; were that object to keep the scope
        # after the request, every request would leave a cycle to the garbage collector.
        assert gc.collect() == 0
    finally:
        gc.enable()
    assert made == []
    assert store.calls == []


async def test_a_session_served_a_moment_ago_is_read_without_a_binding_and_still_ends(
    app: Starlette, chat: ChatAuth, store: CountingStore, made: list[ChatBinding]
) -> None:
    async def read_then_end(request: Request) -> Response:
        first = await get_chat(request)
        again = await request.state.chat
        ended = await chat_module.end_chat_session(request)
        return Response(f"{first is again} {ended == [first.token]}")

    app.router.routes.insert(0, Route("/read-then-end", read_then_end))
    cookie = (await asgi_get(app, "POST", "/login/alice", ""))[1]
    for _ in range(2):  # issued, then read from the store and kept in this process
        status, cookie = await asgi_get(app, "GET", "/chat/token", cookie)
        assert status == 200
    made.clear()
    store.calls.clear()
    assert (await asgi_get(app, "GET", "/chat/token", cookie))[0] == 200
    assert made == []
    assert store.calls == []
    assert len(stored(chat)) == 1

    # Read twice (one answer), then ended: the binding made for the end takes the kept
    # session over, and the token is gone.
    sent = await asgi_call(app, "GET", "/read-then-end", cookie)
    assert sent[0]["status"] == 200
    assert sent[1]["body"] == b"True True"
    assert len(made) == 1
    assert stored(chat) == []


async def test_a_lazy_chat_session_kept_past_its_request_says_so(app: Starlette) -> None:
    kept: list[Any] = []

    async def keep(request: Request) -> Response:
        kept.append(request.state.chat)
        return Response("ok")

    app.router.routes.insert(0, Route("/keep", keep))
    cookie = (await asgi_get(app, "POST", "/login/alice", ""))[1]
    assert (await asgi_get(app, "GET", "/keep", cookie))[0] == 200
    with pytest.raises(ConfigurationError, match="while the request runs"):
        await kept[0]


async def test_the_accessor_is_memoised_per_request(browser: Browser, store: CountingStore) -> None:
    client = await logged_in(browser)
    response = await client.get("/chat-info")
    assert response.json()["memoised"] is True
    assert response.json()["uid"] == "user-alice"
    # Three awaits in the view, one lookup: the cold path reads the key twice (before and
    # after taking the in-process lock) and once more under the store lock.
    gets_first = store.calls.count("get")
    store.calls.clear()
    await client.get("/chat-info")
    assert store.calls == ["get"]
    assert gets_first == 3


# -- the token route ----------------------------------------------------------------------
async def test_token_answers_vary_on_the_cookie_once(browser: Browser) -> None:
    client = await logged_in(browser)
    for response in (await client.get("/chat/token"), await browser().get("/chat/token")):
        assert response.status_code in (200, 401)
        assert response.headers.get_list("vary") == ["Cookie"]


async def test_anonymous_gets_401_json_with_no_store(
    browser: Browser, store: CountingStore
) -> None:
    response = await browser().get("/chat/token")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "ERROR_NOT_AUTHENTICATED"
    assert response.headers["cache-control"] == "no-store"
    assert "set-cookie" not in response.headers  # no chat session id for nobody
    assert store.calls == []


async def test_token_answer_shape_and_no_store(browser: Browser, jwt_secret: str) -> None:
    client = await logged_in(browser)
    response = await client.get("/chat/token")
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert set(body) == {"provider", "uid", "token", "expires_at", "client"}
    assert (body["provider"], body["uid"]) == ("jwt", "user-alice")
    assert body["expires_at"].endswith("Z")
    assert jwt_secret not in response.text
    assert body["client"] == {"algorithm": "HS256"}


async def test_the_token_is_reused_across_requests(browser: Browser, chat: ChatAuth) -> None:
    client = await logged_in(browser)
    tokens = {(await token_of(client))["token"] for _ in range(4)}
    assert len(tokens) == 1
    assert chat.provider.issued == 1  # type: ignore[attr-defined]
    assert stored(chat) == list(tokens)


async def test_a_second_browser_session_gets_its_own_token(
    browser: Browser, chat: ChatAuth
) -> None:
    first, second = await logged_in(browser), await logged_in(browser)
    one, two = await token_of(first), await token_of(second)
    assert one["uid"] == two["uid"] == "user-alice"
    assert one["token"] != two["token"]
    assert sorted(stored(chat)) == sorted([one["token"], two["token"]])
    # Each keeps its own on later requests.
    assert (await token_of(first))["token"] == one["token"]
    assert (await token_of(second))["token"] == two["token"]


async def test_only_the_logged_in_user_gets_a_token(browser: Browser) -> None:
    client = await logged_in(browser, "bob")
    response = await client.get("/chat/token", params={"uid": "user-alice", "user": "alice"})
    assert response.json()["uid"] == "user-bob"


async def test_a_uid_with_a_space_gets_422(browser: Browser, chat: ChatAuth) -> None:
    client = await logged_in(browser, "eve smith")
    response = await client.get("/chat/token")
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "ERROR_UID_WITH_SPACE"
    assert chat.provider.issued == 0  # type: ignore[attr-defined]


# -- logout -----------------------------------------------------------------------------------
async def test_logout_helper_ends_the_chat_session(browser: Browser, chat: ChatAuth) -> None:
    client, other = await logged_in(browser), await logged_in(browser)
    mine, theirs = await token_of(client), await token_of(other)

    response = await client.post("/logout")
    assert response.json() == {"ended": 1}
    assert stored(chat) == [theirs["token"]]  # the other browser session is untouched
    assert chat.ended == [("user-alice", 1)]  # type: ignore[attr-defined]

    assert (await client.get("/chat/token")).status_code == 401
    await client.post("/login/alice")
    assert (await token_of(client))["token"] != mine["token"]


async def test_logout_helper_works_after_the_session_was_cleared(
    browser: Browser, chat: ChatAuth
) -> None:
    client = await logged_in(browser)
    await token_of(client)
    response = await client.post("/logout-clear-first")
    assert response.json() == {"ended": 1}
    assert stored(chat) == []
    assert chat.ended == [("user-alice", 1)]  # ended once, not again by the detection


async def test_logout_of_a_session_that_never_used_chat_does_nothing(
    browser: Browser, store: CountingStore
) -> None:
    client = await logged_in(browser)
    assert (await client.post("/logout")).json() == {"ended": 0}
    assert store.calls == []


async def test_a_cleared_app_session_ends_the_chat_session(
    browser: Browser, chat: ChatAuth
) -> None:
    client, other = await logged_in(browser), await logged_in(browser)
    await token_of(client)
    theirs = await token_of(other)

    assert (await client.post("/clear")).status_code == 200
    # Ended before the response left: nothing to wait for, even over real HTTP.
    assert stored(chat) == [theirs["token"]]
    assert chat.ended == [("user-alice", 1)]  # type: ignore[attr-defined]


async def test_a_new_login_on_the_same_session_ends_the_previous_users_chat(
    browser: Browser, chat: ChatAuth
) -> None:
    client = await logged_in(browser, "alice")
    await token_of(client)
    await client.post("/switch/bob")
    assert (await token_of(client))["uid"] == "user-bob"
    assert stored(chat, "user-alice") == []
    assert len(stored(chat, "user-bob")) == 1


async def test_cleared_session_with_the_store_down_is_logged_not_raised(
    browser: Browser, chat: ChatAuth, store: CountingStore, caplog: pytest.LogCaptureFixture
) -> None:
    client = await logged_in(browser)
    await token_of(client)
    store.corrupt()
    with caplog.at_level(logging.ERROR, logger="chatauth.integrations.starlette"):
        response = await client.post("/clear")
    assert response.status_code == 200
    assert "could not end the chat session of uid user-alice" in caplog.text
    assert "ERROR_STORE_UNAVAILABLE" in caplog.text


# -- outages ----------------------------------------------------------------------------------
async def test_store_down_gives_503_with_retry_after_and_pages_keep_working(
    browser: Browser, store: CountingStore
) -> None:
    client = await logged_in(browser)
    store.corrupt()
    response = await client.get("/chat/token")
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "ERROR_STORE_UNAVAILABLE"
    assert int(response.headers["retry-after"]) >= 1
    assert response.headers["cache-control"] == "no-store"
    assert (await client.get("/plain")).status_code == 200


async def test_provider_down_gives_503_with_retry_after_and_pages_keep_working(
    site_for: Callable[[Any], Browser], store: CountingStore
) -> None:
    provider = MatrixProvider(closed_port_url(), mode="admin", admin_token="s3cr3t-admin")
    chat = ChatAuth(provider, store)
    browser = site_for(make_app(chat))
    client = await logged_in(browser)
    response = await client.get("/chat/token")
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "ERROR_PROVIDER_UNAVAILABLE"
    assert int(response.headers["retry-after"]) >= 1
    assert response.headers["cache-control"] == "no-store"
    assert "s3cr3t-admin" not in response.text
    for path in ("/plain", "/plain"):
        assert (await client.get(path)).status_code == 200
    await chat.aclose()


# -- configuration variants -------------------------------------------------------------------
async def test_user_getter_replaces_authentication_middleware(
    site_for: Callable[[Any], Browser], chat: ChatAuth
) -> None:
    async def user_getter(conn: HTTPConnection) -> ChatIdentity | None:
        name = conn.session.get("username")
        return ChatIdentity(f"member-{name}") if name else None

    app = Starlette(
        routes=ROUTES,
        middleware=[
            Middleware(SessionMiddleware, secret_key=secrets.token_urlsafe(16)),
            Middleware(ChatAuthMiddleware, chatauth=chat, user_getter=user_getter),
        ],
    )
    browser = site_for(app)
    assert (await browser().get("/chat/token")).status_code == 401
    client = browser()
    await client.post("/login/alice")
    assert (await token_of(client))["uid"] == "member-alice"


async def test_without_a_user_source_the_endpoint_says_what_is_missing(
    site_for: Callable[[Any], Browser], chat: ChatAuth
) -> None:
    app = Starlette(
        routes=ROUTES,
        middleware=[
            Middleware(SessionMiddleware, secret_key=secrets.token_urlsafe(16)),
            Middleware(ChatAuthMiddleware, chatauth=chat),
        ],
    )
    response = await site_for(app)().get("/chat/token")
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "ERROR_CONFIG"
    assert "AuthenticationMiddleware" in response.json()["error"]["message"]


async def test_without_session_middleware_there_is_one_chat_session_per_user(
    site_for: Callable[[Any], Browser], chat: ChatAuth
) -> None:
    # A token-auth API: the user comes from a header the app authenticates (here, trusted).
    app = header_user_app(chat)
    browser = site_for(app)
    one = await browser().get("/chat/token", headers={"x-test-user": "api-alice"})
    two = await browser().get("/chat/token", headers={"x-test-user": "api-alice"})
    assert one.json()["token"] == two.json()["token"]


async def test_get_chat_without_the_middleware_names_it() -> None:
    async def view(request: Any) -> Any:
        await get_chat(request)

    transport = httpx.ASGITransport(app=Starlette(routes=[Route("/", view)]))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        with pytest.raises(AssertionError, match="ChatAuthMiddleware must be installed"):
            await client.get("/")


def test_chatauth_must_be_a_chatauth_instance() -> None:
    from chatauth import ConfigurationError

    with pytest.raises(ConfigurationError, match=r"chatauth\.ChatAuth instance"):
        ChatAuthMiddleware(Starlette(), chatauth={"provider": "jwt"})  # type: ignore[arg-type]


# -- non-http scopes --------------------------------------------------------------------------
async def test_websockets_get_the_lazy_chat_session(chat: ChatAuth, store: CountingStore) -> None:
    app = make_app(chat)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        assert await websocket_json(app, "/ws-plain", client.cookies) == {"loaded": False}
        assert store.calls == []

        await client.post("/login/alice")
        # No chat session yet, and a WebSocket cannot set the session cookie.
        answer = await websocket_json(app, "/ws-chat", client.cookies)
        assert answer == {"error": "ERROR_NOT_AUTHENTICATED"}
        token = (await token_of(client))["token"]
        answer = await websocket_json(app, "/ws-chat", client.cookies)
    assert answer["uid"] == "user-alice"
    assert answer["fingerprint"] == chat.store.sessions("jwt", "user-alice")[0].fingerprint
    assert stored(chat) == [token]


async def test_lifespan_passes_through(chat: ChatAuth) -> None:
    seen: list[str] = []

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        seen.append("startup")
        yield
        seen.append("shutdown")

    app = Starlette(
        routes=ROUTES, lifespan=lifespan, middleware=[Middleware(ChatAuthMiddleware, chatauth=chat)]
    )
    sent = await run_asgi(
        app,
        {"type": "lifespan", "state": {}},
        [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}],
    )
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert seen == ["startup", "shutdown"]


def test_importing_without_starlette_names_the_extra() -> None:
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['starlette'] = None\n"
        "try:\n    import chatauth.integrations.starlette\n"
        "except ImportError as exc:\n    print(exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "pip install 'chatauth-middleware[starlette]'" in out.stdout
