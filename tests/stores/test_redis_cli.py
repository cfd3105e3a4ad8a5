"""The ``chatauth`` command, run as a subprocess against real Redis and the CometChat emulator."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from chatauth import ChatAuth, ChatIdentity, from_settings
from chatauth.cli import EXIT_CONFIG, EXIT_OK, EXIT_PENDING, EXIT_UNAVAILABLE
from chatauth.config import normalize_settings
from chatauth.stores.crypto import FernetCipher
from chatauth.testing.cometchat import CometChatEmulator
from tests.servers.redis import RedisServer

pytestmark = pytest.mark.redis

ROOT = Path(__file__).parents[2]
API_KEY = "cli-test-rest-api-key-0123456789"


@pytest.fixture
def emulator(serve_emulator: Callable[[CometChatEmulator], CometChatEmulator]) -> CometChatEmulator:
    return serve_emulator(CometChatEmulator(api_key=API_KEY))


@pytest.fixture
def env(emulator: CometChatEmulator, redis_server: RedisServer) -> dict[str, str]:
    prefix = f"cli-{os.getpid()}-{time.monotonic_ns()}"
    return {
        "CHATAUTH_PROVIDER": "cometchat",
        "CHATAUTH_COMETCHAT_APP_ID": emulator.app_id,
        "CHATAUTH_COMETCHAT_API_KEY": API_KEY,
        "CHATAUTH_COMETCHAT_BASE_URL": emulator.base_url,
        "CHATAUTH_STORE": f"{redis_server.url}?key_prefix={prefix}",
        "CHATAUTH_RETRY_ATTEMPTS": "1",
    }


@pytest.fixture
def chat(env: dict[str, str]) -> Iterator[ChatAuth]:
    """The app's side: the same settings, in this process."""
    service = from_settings(normalize_settings(env, "CHATAUTH_"))
    yield service
    service.close()


def run(
    env: dict[str, str], *args: str, cwd: Path = ROOT, pythonpath: str = str(ROOT)
) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CHATAUTH_")}
    return subprocess.run(
        [sys.executable, "-m", "chatauth.cli", *args],
        cwd=cwd,
        env={**clean, "PYTHONPATH": pythonpath, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_without_settings_it_says_how_to_configure(tmp_path: Path) -> None:
    result = run({}, "check", cwd=tmp_path)
    assert result.returncode == EXIT_CONFIG
    assert "CHATAUTH_PROVIDER" in result.stderr
    assert "--settings" in result.stderr


def test_bad_arguments_are_usage_errors(env: dict[str, str]) -> None:
    assert run(env, "revoke-pending", "--limit", "0").returncode == EXIT_CONFIG
    assert run(env, "no-such-command").returncode == EXIT_CONFIG


def test_check_reports_provider_and_store(env: dict[str, str]) -> None:
    result = run(env, "check")
    assert result.returncode == EXIT_OK, result.stderr
    assert "provider: ok" in result.stdout
    assert "app_id=chatauth-test-app" in result.stdout
    assert "store: ok <RedisStore" in result.stdout
    assert "pending_revocations=0" in result.stdout
    assert API_KEY not in result.stdout + result.stderr


def test_check_fails_with_a_wrong_key_or_a_dead_store(
    env: dict[str, str], redis_factory: Callable[[], RedisServer]
) -> None:
    refused = run({**env, "CHATAUTH_COMETCHAT_API_KEY": "wrong-key-0123456789"}, "check")
    assert refused.returncode == EXIT_UNAVAILABLE
    assert "wrong-key-0123456789" not in refused.stdout + refused.stderr

    dead = redis_factory()
    dead.stop()
    down = run({**env, "CHATAUTH_STORE": dead.url}, "check")
    assert down.returncode == EXIT_UNAVAILABLE
    assert "ERROR_STORE_UNAVAILABLE" in down.stderr


def test_revoke_pending_drains_after_the_provider_returns(
    env: dict[str, str], chat: ChatAuth, emulator: CometChatEmulator
) -> None:
    tokens = [chat.get_session(ChatIdentity("alice"), f"s{i}").token.value for i in range(3)]
    emulator.faults.status(503, times=100, method="DELETE")
    for i in range(3):
        chat.end_session(ChatIdentity("alice"), f"s{i}")
    assert chat.store.count_pending() == 3
    assert all(emulator.is_token_alive(t) for t in tokens)

    down = run(env, "revoke-pending", "--limit", "2")
    assert down.returncode == EXIT_PENDING
    assert "revoked=0 failed=2 remaining=3" in down.stdout
    assert "2 failed, 3 remaining" in down.stderr  # the chatauth log line, for monitoring

    emulator.faults.clear()
    partial = run(env, "revoke-pending", "--limit", "2")
    assert partial.returncode == EXIT_PENDING
    assert "revoked=2 failed=0 remaining=1" in partial.stdout
    done = run(env, "revoke-pending")
    assert done.returncode == EXIT_OK
    assert "revoked=1 failed=0 remaining=0" in done.stdout

    assert emulator.tokens_of("alice") == []
    for result in (down, partial, done):
        for token in tokens:
            assert token not in result.stdout + result.stderr


def test_revoke_pending_loop_runs_until_sigterm(
    env: dict[str, str], chat: ChatAuth, emulator: CometChatEmulator
) -> None:
    token = chat.get_session(ChatIdentity("alice"), "s").token.value
    emulator.faults.status(503, times=100, method="DELETE")
    chat.end_session(ChatIdentity("alice"), "s")
    assert chat.store.count_pending() == 1
    emulator.faults.clear()

    clean = {k: v for k, v in os.environ.items() if not k.startswith("CHATAUTH_")}
    worker = subprocess.Popen(
        [sys.executable, "-m", "chatauth.cli", "revoke-pending", "--loop", "0.2"],
        cwd=ROOT,
        env={**clean, "PYTHONPATH": str(ROOT), **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert worker.stdout is not None
        lines = [worker.stdout.readline(), worker.stdout.readline()]
        assert "revoked=1 failed=0 remaining=0" in lines[0]
        assert "revoked=0 failed=0 remaining=0" in lines[1]  # still running, nothing to do
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(30) == EXIT_OK
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
        if worker.stdout is not None:
            worker.stdout.close()
    assert not emulator.is_token_alive(token)


def test_end_sessions_ends_every_session_of_a_uid(
    env: dict[str, str], chat: ChatAuth, emulator: CometChatEmulator
) -> None:
    for session in ("laptop", "phone"):
        chat.get_session(ChatIdentity("alice"), session)
    chat.get_session(ChatIdentity("bob"), "laptop")
    assert len(emulator.tokens_of("alice")) == 2

    result = run(env, "end-sessions", "alice")
    assert result.returncode == EXIT_OK, result.stderr
    assert "uid=alice ended=2 queued_revocations=0" in result.stdout
    assert emulator.tokens_of("alice") == []
    assert len(emulator.tokens_of("bob")) == 1
    assert chat.store.sessions("cometchat", "alice") == []

    refused = run(env, "end-sessions", "Alice")  # CometChat would fold it to another user
    assert refused.returncode == EXIT_CONFIG
    assert "ERROR_INVALID_UID" in refused.stderr


SETTINGS_MODULE = """
import os
from chatauth import ChatAuth
from chatauth.config import from_settings, normalize_settings

SETTINGS = normalize_settings(os.environ, "APP_")
def make():
    return from_settings(SETTINGS)
NOT_SETTINGS = 42
"""


def test_settings_from_a_module(env: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "myapp_settings.py").write_text(SETTINGS_MODULE)
    app_env = {"APP_" + k.removeprefix("CHATAUTH_"): v for k, v in env.items()}
    for target in ("myapp_settings:SETTINGS", "myapp_settings:make"):
        # The current directory is importable, as with flask and gunicorn.
        result = run(app_env, "--settings", target, "check", cwd=tmp_path)
        assert result.returncode == EXIT_OK, result.stderr
        assert "provider: ok" in result.stdout
    wrong = run(app_env, "--settings", "myapp_settings:NOT_SETTINGS", "check", cwd=tmp_path)
    assert wrong.returncode == EXIT_CONFIG
    missing = run(app_env, "--settings", "myapp_settings:NOPE", "check", cwd=tmp_path)
    assert missing.returncode == EXIT_CONFIG


def test_generate_key_prints_a_working_fernet_key(tmp_path: Path) -> None:
    result = run({}, "generate-key", cwd=tmp_path)
    assert result.returncode == EXIT_OK
    cipher = FernetCipher(result.stdout.strip())
    assert cipher.decrypt(cipher.encrypt(b"x")) == b"x"
