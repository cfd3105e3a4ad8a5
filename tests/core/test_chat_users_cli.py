"""``chatauth chat-user`` (the core command, for Starlette/FastAPI apps and any other):
its lines and exit codes against the CometChat emulator."""

from __future__ import annotations

import io

import pytest

from chatauth.cli import EXIT_CONFIG, EXIT_OK, EXIT_PENDING, main
from chatauth.testing.cometchat import DEFAULT_API_KEY, CometChatEmulator


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, cometchat_emulator: CometChatEmulator, tmp_path) -> None:  # type: ignore[no-untyped-def]
    for key, value in {
        "PROVIDER": "cometchat",
        "COMETCHAT_APP_ID": cometchat_emulator.app_id,
        "COMETCHAT_REGION": cometchat_emulator.region,
        "COMETCHAT_API_KEY": DEFAULT_API_KEY,
        "COMETCHAT_BASE_URL": cometchat_emulator.base_url,
        "STORE": f"sqlite:///{tmp_path / 'chat.db'}",
    }.items():
        monkeypatch.setenv(f"CHATAUTH_{key}", value)


def run(*args: str) -> tuple[int, str]:
    out = io.StringIO()
    return main(["--log-level", "ERROR", *args], out=out), out.getvalue()


def test_update_deactivate_erase(env: None, cometchat_emulator: CometChatEmulator) -> None:
    cometchat_emulator.create_user("user-7", name="Seven")
    code, out = run("chat-user", "update", "user-7", "--name", "Seven of Nine")
    assert (code, out.strip()) == (EXIT_OK, "chat-user: update uid=user-7 done ended=0")
    assert cometchat_emulator.users["user-7"]["name"] == "Seven of Nine"
    code, out = run("chat-user", "erase", "user-7")
    assert code == EXIT_OK
    assert "user-7" not in cometchat_emulator.users


def test_outage_is_queued_and_exit_1(env: None, cometchat_emulator: CometChatEmulator) -> None:
    cometchat_emulator.faults.status(503, times=50)
    code, out = run("chat-user", "deactivate", "user-8")
    cometchat_emulator.faults.clear()
    assert code == EXIT_PENDING
    assert "queued (ERROR_PROVIDER_UNAVAILABLE)" in out
    code, out = run("revoke-pending")
    assert code == EXIT_OK, out
    assert "revoked=1 failed=0 remaining=0" in out


def test_jwt_refuses_by_name(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("CHATAUTH_PROVIDER", "jwt")
    monkeypatch.setenv("CHATAUTH_JWT_SECRET", "x" * 40)
    monkeypatch.setenv("CHATAUTH_STORE", f"sqlite:///{tmp_path / 'chat.db'}")
    code, _ = run("chat-user", "erase", "user-9")
    assert code == EXIT_CONFIG
