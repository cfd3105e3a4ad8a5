"""Smoke tests of the real-server fixtures: each server does what the e2e tests rely on."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import jwt
import pytest

from tests.servers import processes
from tests.servers.deadlines import COMMAND_DEADLINE, REQUEST_DEADLINE
from tests.servers.ports import free_port, listens_on
from tests.servers.postgres import PostgresServer
from tests.servers.processes import pid_running
from tests.servers.redis import RedisServer, redis_command
from tests.servers.synapse import REPO, SynapseServer

LOGIN = "/_matrix/client/v3/login"
LOGOUT = "/_matrix/client/v3/logout"


def _pid_gone(pid: int) -> bool:
    # os.kill(pid, 0) is the check asked for; pid_running also treats a zombie as gone.
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return not pid_running(pid)


def _jwt_login(server: SynapseServer, localpart: str, secret: str | None = None) -> httpx.Response:
    token = jwt.encode(
        {"sub": localpart, "exp": int(time.time()) + 300},
        secret or server.jwt_secret,
        algorithm=server.jwt_algorithm,
    )
    return httpx.post(
        server.url(LOGIN),
        json={"type": "org.matrix.login.jwt", "token": token},
        timeout=REQUEST_DEADLINE,
    )


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# -- Synapse ---------------------------------------------------------------------------------


@pytest.mark.synapse
def test_synapse_health(synapse: SynapseServer) -> None:
    response = httpx.get(synapse.url("/health"), timeout=REQUEST_DEADLINE)
    assert response.status_code == 200
    assert synapse.base_url == f"http://127.0.0.1:{synapse.port}"
    assert synapse.server_name == "localhost"
    assert synapse.pid is not None
    assert pid_running(synapse.pid)


@pytest.mark.synapse
def test_synapse_admin_token(synapse: SynapseServer) -> None:
    response = synapse.whoami(synapse.admin_token)
    assert response.status_code == 200, response.text
    assert response.json()["user_id"] == "@admin:localhost" == synapse.admin_user_id
    user = httpx.get(
        synapse.url("/_synapse/admin/v2/users/@admin:localhost"),
        headers=_bearer(synapse.admin_token),
        timeout=REQUEST_DEADLINE,
    )
    assert user.status_code == 200, user.text
    assert user.json()["admin"] is True


@pytest.mark.synapse
def test_synapse_jwt_login_message_logout(synapse: SynapseServer) -> None:
    login = _jwt_login(synapse, "alice")
    assert login.status_code == 200, login.text
    body = login.json()
    assert body["user_id"] == "@alice:localhost"
    assert body["device_id"]
    token = body["access_token"]

    whoami = synapse.whoami(token)
    assert whoami.status_code == 200
    assert whoami.json()["device_id"] == body["device_id"]

    room_id = synapse.create_room(token)
    assert room_id.startswith("!")
    sent = synapse.send_message(token, room_id, "hello from the fixture test")
    assert sent.status_code == 200, sent.text
    assert sent.json()["event_id"].startswith("$")

    logout = httpx.post(
        synapse.url(LOGOUT), headers=_bearer(token), json={}, timeout=REQUEST_DEADLINE
    )
    assert logout.status_code == 200, logout.text
    after = synapse.whoami(token)
    assert after.status_code == 401
    assert after.json()["errcode"] == "M_UNKNOWN_TOKEN"


@pytest.mark.synapse
def test_synapse_jwt_with_wrong_secret_is_refused(synapse: SynapseServer) -> None:
    login = _jwt_login(synapse, "mallory", secret="not-the-secret-" + "x" * 32)
    assert login.status_code == 403
    assert login.json()["errcode"] == "M_FORBIDDEN"


@pytest.mark.synapse
def test_synapse_admin_login_as(synapse: SynapseServer) -> None:
    user_id = "@bob:localhost"
    created = httpx.put(
        synapse.url(f"/_synapse/admin/v2/users/{user_id}"),
        headers=_bearer(synapse.admin_token),
        json={"displayname": "Bob"},
        timeout=REQUEST_DEADLINE,
    )
    assert created.status_code in (200, 201), created.text

    def login_as(valid_until_ms: int) -> str:
        response = httpx.post(
            synapse.url(f"/_synapse/admin/v1/users/{user_id}/login"),
            headers=_bearer(synapse.admin_token),
            json={"valid_until_ms": valid_until_ms},
            timeout=REQUEST_DEADLINE,
        )
        assert response.status_code == 200, response.text
        return str(response.json()["access_token"])

    def now_ms() -> int:
        return int(time.time() * 1000)

    token = login_as(now_ms() + 3_600_000)
    whoami = synapse.whoami(token)
    assert whoami.status_code == 200
    assert whoami.json()["user_id"] == user_id
    assert "device_id" not in whoami.json()  # login-as tokens have no device
    room_id = synapse.create_room(token)
    assert synapse.send_message(token, room_id, "puppeted").status_code == 200

    # valid_until_ms is honoured: an expired token is a soft logout. The token lives 2 s of
    # Synapse's wall clock; on a busy machine the first check may come too late to see it
    # alive, so that check only counts when it was sent well before the expiry.
    valid_until = now_ms() + 2000
    short = login_as(valid_until)
    sent_at = now_ms()
    alive = synapse.whoami(short).status_code
    if sent_at < valid_until - 1000:
        assert alive == 200
    # Real time has to pass for Synapse's clock: wait until the expiry is behind us.
    while now_ms() <= valid_until + 100:
        time.sleep(0.1)
    expired = synapse.whoami(short)
    assert expired.status_code == 401
    assert expired.json()["errcode"] == "M_UNKNOWN_TOKEN"
    assert expired.json()["soft_logout"] is True


@pytest.mark.synapse
def test_synapse_register_user(synapse: SynapseServer) -> None:
    localpart = f"carol-{uuid.uuid4().hex[:8]}"
    token = synapse.register_user(localpart)
    assert synapse.whoami(token).json()["user_id"] == f"@{localpart}:localhost"
    user = httpx.get(
        synapse.url(f"/_synapse/admin/v2/users/@{localpart}:localhost"),
        headers=_bearer(synapse.admin_token),
        timeout=REQUEST_DEADLINE,
    )
    assert user.json()["admin"] is False


@pytest.mark.synapse
def test_synapse_rate_limits_are_raised(synapse: SynapseServer) -> None:
    # Synapse's defaults allow bursts of 5 logins per account and 10 rooms or messages.
    for _ in range(8):
        login = _jwt_login(synapse, "dave")
        assert login.status_code == 200, login.text
    token = login.json()["access_token"]
    for _ in range(12):
        room_id = synapse.create_room(token)
    for i in range(15):
        sent = synapse.send_message(token, room_id, f"message {i}")
        assert sent.status_code == 200, sent.text


@pytest.mark.synapse
def test_synapse_server_stop_restart_and_teardown() -> None:
    with SynapseServer() as server:
        pid = server.pid
        assert pid is not None
        port, directory = server.port, server.directory
        alice = _jwt_login(server, "alice").json()["access_token"]

        server.stop()
        assert server.pid is None
        assert _pid_gone(pid)
        with pytest.raises(httpx.ConnectError):
            httpx.get(server.url("/health"), timeout=REQUEST_DEADLINE)

        server.restart()
        assert server.port == port
        assert server.pid is not None
        assert server.pid != pid
        pid = server.pid
        # Same data: tokens issued before the outage still work.
        assert server.whoami(server.admin_token).status_code == 200
        assert server.whoami(alice).status_code == 200
    assert _pid_gone(pid)
    assert not directory.exists()


@pytest.mark.synapse
def test_synapse_failed_start_reports_the_log(
    synapse_factory: Callable[..., SynapseServer],
) -> None:
    with pytest.raises(pytest.fail.Exception, match="exited with code") as failure:
        synapse_factory(extra_config={"database": {"name": "no-such-engine"}})
    assert "no-such-engine" in str(failure.value)


def test_missing_synapse_fails_with_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNAPSE_PYTHON", "/nonexistent/python")
    with pytest.raises(pytest.fail.Exception, match=r"tests/servers/install_synapse\.py"):
        SynapseServer()


# -- Redis -----------------------------------------------------------------------------------


@pytest.mark.redis
def test_redis_ping_set_get(redis_server: RedisServer) -> None:
    assert redis_server.url == f"redis://127.0.0.1:{redis_server.port}/0"
    assert redis_command(redis_server.port, "PING") == b"+PONG\r\n"
    key = f"chatauth-{uuid.uuid4().hex}"
    assert redis_command(redis_server.port, "SET", key, "value") == b"+OK\r\n"
    assert redis_command(redis_server.port, "GET", key) == b"$5\r\nvalue\r\n"


@pytest.mark.redis
def test_redis_outage_and_teardown() -> None:
    with RedisServer() as server:
        pid, port, directory = server.pid, server.port, server.directory
        assert pid is not None

        server.stop()
        assert _pid_gone(pid)
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=2).close()

        server.start()
        assert server.port == port
        assert server.ping()
        pid = server.pid
        assert pid is not None
    assert _pid_gone(pid)
    assert not directory.exists()


def _ports_starting_with(first: int) -> Callable[[], int]:
    """A ``free_port`` whose first answer is ``first`` (a port another process holds)."""
    answers = [first]
    return lambda: answers.pop() if answers else free_port()


@pytest.fixture
def foreign_listener() -> Iterator[int]:
    """A port another process's socket listens on (it accepts and never answers)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


@pytest.mark.redis
def test_a_taken_port_is_left_for_another(
    monkeypatch: pytest.MonkeyPatch, foreign_listener: int
) -> None:
    # redis-server finds the port taken, says so and exits: the start goes on elsewhere.
    monkeypatch.setattr(processes, "free_port", _ports_starting_with(foreign_listener))
    with RedisServer() as server:
        assert server.port != foreign_listener
        assert server.pid is not None
        assert listens_on(server.pid, server.port)
        assert server.ping()


@pytest.mark.redis
def test_a_port_answered_by_another_server_is_not_taken_for_ours(
    monkeypatch: pytest.MonkeyPatch, redis_server: RedisServer
) -> None:
    # The readiness probe may reach the other redis-server (it answers PONG too) before ours
    # has failed to bind: the listener's owner decides whose port it is.
    monkeypatch.setattr(processes, "free_port", _ports_starting_with(redis_server.port))
    with RedisServer() as server:
        assert server.port != redis_server.port
        assert server.pid is not None
        assert listens_on(server.pid, server.port)
        key = f"chatauth-{uuid.uuid4().hex}"
        assert redis_command(server.port, "SET", key, "ours") == b"+OK\r\n"
        assert redis_command(redis_server.port, "GET", key) == b"$-1\r\n"


@pytest.mark.redis
def test_a_restart_whose_port_was_taken_fails_clearly() -> None:
    with RedisServer() as server:
        port = server.port
        server.stop()
        with socket.socket() as squatter:
            squatter.bind(("127.0.0.1", port))
            squatter.listen()
            with pytest.raises(pytest.fail.Exception, match=f"port {port} is taken"):
                server.start()
        assert not server.running


def test_missing_redis_fails_with_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_SERVER", "/nonexistent/redis-server")
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(pytest.fail.Exception, match="apt-get install -y redis-server"):
        RedisServer()


# -- PostgreSQL ------------------------------------------------------------------------------


@pytest.mark.postgres
def test_postgres_select_and_create_database(postgres_server: PostgresServer) -> None:
    assert postgres_server.host == "127.0.0.1"
    assert postgres_server.user == "postgres"
    assert postgres_server.psql("select 1").strip() == "1"
    # The plain psql binary against dsn(), as a client library would connect.
    direct = subprocess.run(
        [str(postgres_server.bindir / "psql"), postgres_server.dsn(), "-Atc", "select 1"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert direct.stdout.strip() == "1"

    name = f"chatauth_{uuid.uuid4().hex[:8]}"
    dsn = postgres_server.create_database(name)
    assert dsn == postgres_server.dsn(name)
    assert dsn.endswith(f"@127.0.0.1:{postgres_server.port}/{name}")
    assert postgres_server.psql("select current_database()", name).strip() == name


@pytest.mark.postgres
def test_postgres_restart_keeps_data_and_teardown() -> None:
    with PostgresServer() as server:
        pid, port, directory = server.pid, server.port, server.directory
        assert pid is not None
        server.psql("create table kept (v text); insert into kept values ('still here')")

        server.stop()
        assert _pid_gone(pid)
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=2).close()

        server.start()
        assert server.port == port
        assert server.psql("select v from kept").strip() == "still here"
        pid = server.pid
        assert pid is not None
    assert _pid_gone(pid)
    assert not directory.exists()


def test_missing_postgres_fails_with_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PG_BINDIR", "/nonexistent")
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setattr("tests.servers.postgres.glob.glob", lambda pattern: [])
    with pytest.raises(pytest.fail.Exception, match="apt-get install -y postgresql"):
        PostgresServer()


def test_constructing_a_server_leaves_no_temp_dir() -> None:
    # Other tests build a server only to read e.g. RedisServer().binary.
    for server in (RedisServer(), PostgresServer(), SynapseServer()):
        assert server._tmp._path is None, server
        server.cleanup()
        assert server._tmp._path is None, server


# -- the fixtures themselves -----------------------------------------------------------------

INNER_TEST = """
import json
import os

import httpx


def test_fixtures(synapse, synapse_factory, redis_server, redis_factory, postgres_server):
    fresh = synapse_factory()
    assert fresh.port != synapse.port and fresh.pid != synapse.pid
    assert fresh.admin_token != synapse.admin_token
    for server in (synapse, fresh):
        assert httpx.get(server.url("/health")).status_code == 200
    extra_redis = redis_factory()
    assert extra_redis.ping() and redis_server.ping()
    assert postgres_server.psql("select 1").strip() == "1"
    servers = [synapse, fresh, redis_server, extra_redis, postgres_server]
    with open(os.environ["SERVER_RECORD"], "w") as record:
        json.dump([[s.pid, str(s.directory)] for s in servers], record)
"""


@pytest.mark.synapse
@pytest.mark.redis
@pytest.mark.postgres
def test_fixtures_stop_everything_at_teardown(tmp_path: Path) -> None:
    # A separate pytest run, so the session-scoped fixtures really reach their teardown.
    (tmp_path / "test_inner.py").write_text(textwrap.dedent(INNER_TEST))
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    record = tmp_path / "servers.json"
    env = {**os.environ, "PYTHONPATH": str(REPO), "SERVER_RECORD": str(record)}
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-c",
            str(tmp_path / "pytest.ini"),
            "--rootdir",
            str(tmp_path),
            "-p",
            "no:cacheprovider",
            # Only our plugin: chatauth's own pytest11 plugin is not under test here.
            "-p",
            "no:chatauth",
            "-p",
            "tests.servers.fixtures",
            "test_inner.py",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=COMMAND_DEADLINE,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    servers = json.loads(record.read_text())
    assert len(servers) == 5
    for pid, directory in servers:
        assert _pid_gone(pid), f"pid {pid} still running after fixture teardown"
        assert not Path(directory).exists()
