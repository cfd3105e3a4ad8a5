"""The extension under real WSGI servers: waitress threads and gunicorn worker processes."""

from __future__ import annotations

from pathlib import Path

import httpx
import jwt

from tests.servers.ports import free_port

from .apps import JWT_SECRET, SECRET_KEY
from .servers import fifty_at_once, gunicorn_command, serve, waitress_command

TARGET = "tests.integrations.flask.apps:create_server_app"


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {
        "CHATAUTH_JWT_SECRET": JWT_SECRET,
        "CHATAUTH_STORE": f"sqlite:///{tmp_path / 'chat.sqlite3'}",
        "TEST_ISSUE_LOG": str(tmp_path / "issued.log"),
        "TEST_INSTANCE": str(tmp_path / "instance"),
        "FLASK_SECRET_KEY": SECRET_KEY,
        **extra,
    }


def _logged_in(base_url: str, user: str) -> httpx.Cookies:
    with httpx.Client(base_url=base_url, timeout=30) as client:
        response = client.post("/login", data={"user": user})
        assert response.status_code == 200, response.text
        return client.cookies


def _fifty_first_requests(base_url: str, user: str) -> set[str]:
    responses = fifty_at_once(base_url, _logged_in(base_url, user), "/chat/token")
    assert {r.status_code for r in responses} == {200}, [r.text for r in responses[:3]]
    assert {r.headers["Cache-Control"] for r in responses} == {"no-store"}
    return {r.json()["token"] for r in responses}


def test_waitress_fifty_threads_one_users_first_token_one_issue(tmp_path: Path) -> None:
    port = free_port()
    env = _env(tmp_path, TEST_ISSUE_DELAY="0.3")
    with serve(waitress_command(TARGET, port, threads=50), port, env, tmp_path / "log") as url:
        tokens = _fifty_first_requests(url, "alice")
    assert len(tokens) == 1
    assert jwt.decode(tokens.pop(), JWT_SECRET, algorithms=["HS256"])["sub"] == "user-alice"
    assert (tmp_path / "issued.log").read_text().split() == ["user-alice"]


def test_gunicorn_workers_and_threads_share_one_issue(tmp_path: Path) -> None:
    # Two processes, eight threads each, one SQLite store: the store's lock makes the
    # single flight hold across processes too.
    port = free_port()
    env = _env(tmp_path, TEST_ISSUE_DELAY="0.3")
    command = gunicorn_command(TARGET, port, workers=2, threads=8)
    with serve(command, port, env, tmp_path / "log") as url:
        tokens = _fifty_first_requests(url, "bob")
    assert len(tokens) == 1
    assert (tmp_path / "issued.log").read_text().split() == ["user-bob"]


def test_waitress_answers_401_and_503_as_json(tmp_path: Path) -> None:
    port = free_port()
    secret = "matrix-login-secret-0123456789abcdef"
    env = _env(
        tmp_path,
        CHATAUTH_PROVIDER="matrix",
        CHATAUTH_MATRIX_HOMESERVER_URL=f"http://127.0.0.1:{free_port()}",
        CHATAUTH_MATRIX_JWT_SECRET=secret,
        CHATAUTH_TIMEOUT="1",
        CHATAUTH_RETRY_ATTEMPTS="1",
    )
    del env["CHATAUTH_JWT_SECRET"]
    with serve(waitress_command(TARGET, port), port, env, tmp_path / "log") as url:
        anonymous = httpx.get(f"{url}/chat/token")
        assert anonymous.status_code == 401
        assert anonymous.headers["Cache-Control"] == "no-store"
        assert anonymous.json()["error"]["code"] == "ERROR_NOT_AUTHENTICATED"
        down = httpx.get(f"{url}/chat/token", cookies=_logged_in(url, "carol"), timeout=30)
    assert down.status_code == 503
    assert int(down.headers["Retry-After"]) >= 1
    assert down.headers["Cache-Control"] == "no-store"
    assert down.json()["error"]["code"] == "ERROR_PROVIDER_UNAVAILABLE"
    assert secret not in down.text
    assert secret not in (tmp_path / "log").read_text()
