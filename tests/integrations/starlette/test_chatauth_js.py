"""``chatauth.js`` as served, run by Node against a real server (uvicorn on 127.0.0.1).

Node 20 imports the module the app serves at ``/chat/chatauth.js`` and calls every function
of its API over real HTTP, authenticated by the app's session cookie passed through the
``headers`` option (as an API client passes its credential). The SDK objects the hooks are
wired to are the smallest stand-ins that have the hook (a Sendbird ``SessionHandler`` is a
plain object with ``onSessionTokenRequired``; a Twilio client emits ``tokenAboutToExpire``);
the official SDKs themselves run in the browser suite. Python then checks each token the
script got against the store: the replaced ones are gone, the last one is the stored one.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from chatauth import ChatAuth
from chatauth.refresh import REFRESH_WINDOW, refresh_limiter
from chatauth.stores.memory import MemoryStore
from chatauth.testing.clock import ManualClock
from tests.servers.deadlines import COMMAND_DEADLINE

from .helpers import CountingJWTProvider, make_app, serve_app

SCRIPT = r"""
import * as chatauth from "./chatauth.mjs";
const [prefix, cookie] = process.argv.slice(2);
const opts = { prefix, headers: { Cookie: cookie } };
const out = {};
const catching = async (work) => {
  try { await work(); return null; } catch (error) {
    return { name: error.name, status: error.status, code: error.code,
             retryAfter: error.retryAfter, isError: error instanceof chatauth.ChatAuthError };
  }
};

out.anonymous = await catching(() => chatauth.fetchChatToken({ prefix }));
out.offline = await catching(() => chatauth.fetchChatToken({ prefix: "http://127.0.0.1:9/chat" }));
const first = await chatauth.fetchChatToken(opts);
out.first = first.token;
out.session_keys = Object.keys(first).sort();
out.refreshed = (await chatauth.refreshChatToken(first.token, opts)).token;
out.again = (await chatauth.refreshChatToken(first.token, opts)).token;

// Stream: the first call gives the current token, the next one a replaced one.
const provider = chatauth.streamTokenProvider({ ...opts, headers: async () => opts.headers });
out.stream = [await provider(), await provider()];

// Sendbird: onSessionTokenRequired(resolve, reject).
const handler = {};
chatauth.sendbirdSessionHandler(handler, { ...opts, session: { token: out.stream[1] } });
out.sendbird = await new Promise(
  (resolve, reject) => handler.onSessionTokenRequired(resolve, reject),
);

// Twilio: tokenAboutToExpire -> client.updateToken(new token).
const listeners = {};
let updated;
const twilio = {
  on: (name, listener) => { listeners[name] = listener; },
  updateToken: async (token) => { updated = token; return twilio; },
};
chatauth.twilioTokenRefresh(twilio, { ...opts, session: { token: out.sendbird } });
out.twilio_events = Object.keys(listeners).sort();
await listeners.tokenAboutToExpire();
out.twilio = updated;

// CometChat: login refused for the held token -> one re-login with a replaced one.
const logins = [];
const CometChat = {
  login: async (token) => {
    logins.push(token);
    if (logins.length === 1) throw { code: "AUTH_ERR_AUTH_TOKEN_NOT_FOUND" };
    return { uid: "user-alice" };
  },
};
const cometchatOpts = { ...opts, session: { token: out.twilio } };
out.cometchat_user = await chatauth.cometchatLogin(CometChat, cometchatOpts);
out.cometchat = logins;

// Matrix: tokenRefreshFunction(refreshToken) -> { accessToken, refreshToken, expiry }.
const refreshMatrix = chatauth.matrixTokenRefresh({ ...opts, session: { token: logins[1] } });
const matrix = await refreshMatrix(chatauth.MATRIX_REFRESH_PLACEHOLDER);
out.matrix = [matrix.accessToken, matrix.refreshToken, matrix.expiry instanceof Date];

// Past the limit: 429 with Retry-After.
out.limited = await catching(() => chatauth.refreshChatToken(matrix.accessToken, opts));
console.log(JSON.stringify(out));
"""


@pytest.fixture
def node() -> str:
    found = shutil.which("node")
    if found is None:
        pytest.fail("chatauth.js is tested with Node (>= 18): apt-get install nodejs")
    return found


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, ChatAuth]]:
    clock = ManualClock()
    service = ChatAuth(
        CountingJWTProvider("a-test-secret-of-at-least-32-bytes!!"),
        MemoryStore(clock=clock),
        clock=clock,
    )
    with serve_app(make_app(service)) as url:
        yield url, service
    service.close()


# The node script is the browser: it prints the sessions chatauth.js fetched, tokens included,
# for the assertions below (its owner's tokens; secrets are still checked).
@pytest.mark.canary_allows_tokens("the script prints the sessions it fetched as their owner")
def test_every_function_against_the_endpoints(
    node: str, server: tuple[str, ChatAuth], tmp_path: Path
) -> None:
    url, service = server
    # Six replacements are asked for below; the seventh is refused.
    refresh_limiter(service).limit = 6
    with httpx.Client(base_url=url) as client:
        assert client.post("/login/alice").status_code == 200
        cookie = "; ".join(f"{k}={v}" for k, v in client.cookies.items())
        served = client.get("/chat/chatauth.js")
    assert served.headers["content-type"] == "text/javascript; charset=utf-8"
    (tmp_path / "chatauth.mjs").write_bytes(served.content)
    (tmp_path / "run.mjs").write_text(SCRIPT)
    done = subprocess.run(
        [node, "run.mjs", f"{url}/chat", cookie],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=COMMAND_DEADLINE,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    out: dict[str, Any] = json.loads(done.stdout)

    assert out["anonymous"] == {
        "name": "ChatAuthError",
        "status": 401,
        "code": "ERROR_NOT_AUTHENTICATED",
        "retryAfter": None,
        "isError": True,
    }
    assert out["offline"]["status"] == 0
    assert out["offline"]["code"] == "ERROR_NETWORK"
    assert out["session_keys"] == ["client", "expires_at", "provider", "token", "uid"]
    # Each hook replaced the token it was handed, so every token is new...
    chain = [
        out["first"],
        out["refreshed"],
        out["stream"][1],
        out["sendbird"],
        out["twilio"],
        out["cometchat"][1],
        out["matrix"][0],
    ]
    assert len(set(chain)) == len(chain)
    # ...except where the current one was the answer.
    assert out["again"] == out["refreshed"]
    assert out["stream"][0] == out["refreshed"]
    assert out["twilio_events"] == ["tokenAboutToExpire", "tokenExpired"]
    assert out["cometchat"][0] == out["twilio"]
    assert out["cometchat_user"] == {"uid": "user-alice"}
    assert out["matrix"][1:] == ["chatauth", True]
    assert out["limited"]["status"] == 429
    assert out["limited"]["code"] == "ERROR_REFRESH_LIMITED"
    assert out["limited"]["retryAfter"] == REFRESH_WINDOW
    # The store holds the last token only (one app session: one token).
    stored = service.store.sessions(service.provider.name, "user-alice")
    assert [t.value for t in stored] == [out["matrix"][0]]
