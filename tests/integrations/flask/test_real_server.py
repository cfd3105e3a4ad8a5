"""The extension under real WSGI servers: waitress threads and gunicorn worker processes."""

from __future__ import annotations

from pathlib import Path

import httpx
import jwt

from tests.servers.ports import refused_port

from .apps import JWT_SECRET, SECRET_KEY
from .servers import fifty_at_once, gunicorn_command, serve_on_free_port, waitress_command

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
    with httpx.Client(base_url=base_url, timeout=60) as client:
        response = client.post("/login", data={"user": user})
        assert response.status_code == 200, response.text
        return client.cookies


def _fifty_first_requests(base_url: str, user: str) -> set[str]:
    responses = fifty_at_once(base_url, _logged_in(base_url, user), "/chat/token")
    assert {r.status_code for r in responses} == {200}, [r.text for r in responses[:3]]
    assert {r.headers["Cache-Control"] for r in responses} == {"no-store"}
    return {r.json()["token"] for r in responses}


def _race_env(tmp_path: Path) -> dict[str, str]:
    folder = tmp_path / "handshake"
    folder.mkdir()
    return _env(tmp_path, TEST_HANDSHAKE_DIR=str(folder))


def _assert_raced(tmp_path: Path) -> None:
    """One issue call, held open until another request was seen waiting for its token."""
    folder = tmp_path / "handshake"
    [enter] = folder.glob("enter-*")
    [exit_] = folder.glob("exit-*")
    waiting = [float(path.read_text()) for path in folder.glob("waiting-*")]
    assert waiting, "no request waited for the token being issued"
    # A waiter was seen before the issue call left the provider: the requests overlapped.
    assert min(waiting) <= float(exit_.read_text())
    assert float(enter.read_text()) <= float(exit_.read_text())


def test_waitress_fifty_threads_one_users_first_token_one_issue(tmp_path: Path) -> None:
    env = _race_env(tmp_path)
    command = lambda port: waitress_command(TARGET, port, threads=50)  # noqa: E731
    with serve_on_free_port(command, env, tmp_path / "log") as url:
        tokens = _fifty_first_requests(url, "alice")
    assert len(tokens) == 1
    _assert_raced(tmp_path)
    assert jwt.decode(tokens.pop(), JWT_SECRET, algorithms=["HS256"])["sub"] == "user-alice"
    assert (tmp_path / "issued.log").read_text().split() == ["user-alice"]


def test_gunicorn_workers_and_threads_share_one_issue(tmp_path: Path) -> None:
    # Two processes, eight threads each, one SQLite store: the store's lock makes the
    # single flight hold across processes too.
    env = _race_env(tmp_path)
    command = lambda port: gunicorn_command(TARGET, port, workers=2, threads=8)  # noqa: E731
    with serve_on_free_port(command, env, tmp_path / "log") as url:
        tokens = _fifty_first_requests(url, "bob")
    assert len(tokens) == 1
    _assert_raced(tmp_path)
    assert (tmp_path / "issued.log").read_text().split() == ["user-bob"]


def test_waitress_answers_401_and_503_as_json(tmp_path: Path) -> None:
    secret = "matrix-login-secret-0123456789abcdef"
    # The homeserver's port refuses connections for the whole test: a provider outage.
    with refused_port() as homeserver_port:
        env = _env(
            tmp_path,
            CHATAUTH_PROVIDER="matrix",
            CHATAUTH_MATRIX_HOMESERVER_URL=f"http://127.0.0.1:{homeserver_port}",
            CHATAUTH_MATRIX_JWT_SECRET=secret,
            CHATAUTH_TIMEOUT="1",
            CHATAUTH_RETRY_ATTEMPTS="1",
        )
        del env["CHATAUTH_JWT_SECRET"]
        command = lambda port: waitress_command(TARGET, port)  # noqa: E731
        with serve_on_free_port(command, env, tmp_path / "log") as url:
            anonymous = httpx.get(f"{url}/chat/token", timeout=60)
            assert anonymous.status_code == 401
            assert anonymous.headers["Cache-Control"] == "no-store"
            assert anonymous.json()["error"]["code"] == "ERROR_NOT_AUTHENTICATED"
            down = httpx.get(f"{url}/chat/token", cookies=_logged_in(url, "carol"), timeout=60)
    assert down.status_code == 503
    assert int(down.headers["Retry-After"]) >= 1
    assert down.headers["Cache-Control"] == "no-store"
    assert down.json()["error"]["code"] == "ERROR_PROVIDER_UNAVAILABLE"
    assert secret not in down.text
    assert secret not in (tmp_path / "log").read_text()
