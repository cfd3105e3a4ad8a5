"""The lifecycle soak (issue 13): many cycles through the three sample apps, each a real
server process, of login -> token -> one ending, then the sweep; no token may outlive it.

Two providers whose tokens never expire, each behind its own three app servers: the CometChat
emulator and a real Synapse in JWT-login mode; cycles alternate between them. Each cycle picks
a framework (round robin) and an ending (seeded random): ``logout``, ``abandon`` (the cookie
jar is thrown away), ``switch`` (another user logs in over the session, no logout), on Django
``password-change`` (every session of the user ends) or, on the emulator,
``logout-provider-down`` (every revocation call fails: queued). A logout, a switch or a
password change must kill the token at once (checked at the provider in every cycle). On the
emulator one token request in ten meets an injected provider fault (a 503, retried by the
core); Synapse is real and takes no injected faults. After the cycles, the sweep runs over
each app's store with ``now`` past ``SESSION_IDLE`` (the clock is passed, not waited for),
then the queued revocations are retried. Counts come from the providers (emulator tokens that
would still log in; Synapse tokens ``/account/whoami`` still accepts) and the stores (rows,
queued revocations).

``SOAK_CYCLES`` (default 10000) sets the number of cycles. The result line, ``soak: <N>
cycles, <A> tokens alive, <R> rows, <P> pending``, is written to ``SOAK_RESULT`` (default
``build/soak.txt``), which tox prints last.
"""

from __future__ import annotations

import collections
import contextlib
import os
import random
import re
import shutil
import tempfile
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx

import chatauth
from chatauth.stores.sqlite import SQLiteStore
from chatauth.testing.cometchat import DEFAULT_API_KEY, DEFAULT_APP_ID, CometChatEmulator
from sample_projects.csrf import FIELD, token_in
from tests.e2e.browser.apps import REPO, SAMPLE_APPS, AppServer
from tests.servers.deadlines import REQUEST_DEADLINE
from tests.servers.synapse import SynapseServer

PASSWORDS = {"alice": "wonderland", "bob": "builder"}
ENDINGS = ("logout", "abandon", "switch", "logout-provider-down")
FAULT_RATE = 0.1
CSRF = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


def matrix_settings(synapse: SynapseServer) -> dict[str, str]:
    """Synapse in JWT-login mode: one device (and token) per app session, never expiring."""
    return {
        "PROVIDER": "matrix",
        "MATRIX_HOMESERVER_URL": synapse.base_url,
        "MATRIX_SERVER_NAME": synapse.server_name,
        "MATRIX_JWT_SECRET": synapse.jwt_secret,
    }


def synapse_alive(synapse: SynapseServer, tokens: list[str]) -> int:
    """How many of ``tokens`` Synapse still accepts."""
    count = 0
    with httpx.Client(base_url=synapse.base_url, timeout=REQUEST_DEADLINE) as client:
        for token in tokens:
            answer = client.get(
                "/_matrix/client/v3/account/whoami", headers={"Authorization": f"Bearer {token}"}
            )
            assert answer.status_code in (200, 401), answer.text
            count += answer.status_code == 200
    return count


def chat_settings(emulator: CometChatEmulator) -> dict[str, str]:
    return {
        "PROVIDER": "cometchat",
        "COMETCHAT_APP_ID": DEFAULT_APP_ID,
        "COMETCHAT_API_KEY": DEFAULT_API_KEY,
        "COMETCHAT_BASE_URL": emulator.base_url,
        # Two tries: a logout with the provider down costs one backoff wait, not two.
        "RETRY_ATTEMPTS": "2",
    }


class Visitor:
    """One browser (one cookie jar) on one sample app, through its own forms."""

    def __init__(self, server: AppServer) -> None:
        self.server = server
        self.client = httpx.Client(base_url=server.base_url, timeout=REQUEST_DEADLINE)

    def close(self) -> None:
        self.client.close()

    def _csrf(self, form_page: str) -> dict[str, str]:
        if self.server.app.name != "django":
            # The Flask and Starlette samples' signed per-session token, from the page whose
            # form a browser would submit (sample_projects/csrf.py).
            return {FIELD: token_in(self.client.get(form_page).text)}
        token = self.client.cookies.get("csrftoken")
        if token is None:
            page = self.client.get(self.server.app.login_path)
            match = CSRF.search(page.text)
            assert match, "no CSRF token on Django's login page"
            return {"csrfmiddlewaretoken": match.group(1)}
        return {"csrfmiddlewaretoken": token}

    def login(self, user: str) -> None:
        data = {
            "username": user,
            "password": PASSWORDS[user],
            **self._csrf(self.server.app.login_path),
        }
        answer = self.client.post(self.server.app.login_path, data=data)
        assert answer.status_code in (302, 303), (self.server.app.name, answer.status_code)

    def token(self) -> str:
        answer = self.client.get("/chat/token")
        assert answer.status_code == 200, (self.server.app.name, answer.status_code, answer.text)
        value: str = answer.json()["token"]
        return value

    def change_password(self) -> None:
        """Django's own password change view (to the same password, so later logins work):
        every chat session of the user ends (``END_SESSIONS_ON_PASSWORD_CHANGE``)."""
        password = PASSWORDS["alice"]
        data = {"old_password": password, "new_password1": password, "new_password2": password}
        form = "/accounts/password_change/"
        answer = self.client.post(form, data={**data, **self._csrf(form)})
        assert answer.status_code == 302, (answer.status_code, answer.text[:500])

    def logout(self) -> None:
        path = "/accounts/logout/" if self.server.app.name == "django" else "/logout"
        answer = self.client.post(path, data=self._csrf("/"))
        # The app's own answer (a redirect), whatever the provider does: never a 500.
        assert answer.status_code in (302, 303), (self.server.app.name, answer.status_code)


@contextlib.contextmanager
def servers(**settings: dict[str, str]) -> Iterator[dict[tuple[str, str], AppServer]]:
    """The three samples as real server processes per provider (``settings`` by provider
    name), each stopped by PID at the end."""
    started: dict[tuple[str, str], AppServer] = {}
    root = Path(tempfile.mkdtemp(prefix="chatauth-soak-", dir=REPO / "build"))
    try:
        for provider, chat in settings.items():
            for name in ("django", "flask", "starlette"):
                workdir = root / f"{provider}-{name}"
                workdir.mkdir()
                server = AppServer(SAMPLE_APPS[name], chat, workdir).start()
                started[(provider, name)] = server
        yield started
    finally:
        errors: list[BaseException] = []
        for server in started.values():
            try:
                server.stop()
            except BaseException as exc:  # re-raised below, after the others are stopped
                errors.append(exc)
        shutil.rmtree(root, ignore_errors=True)
        if errors:
            raise errors[0]


def alive(emulator: CometChatEmulator) -> int:
    return sum(len(emulator.tokens_of(uid)) for uid in emulator.users)


def test_soak(cometchat_emulator: CometChatEmulator, synapse: SynapseServer) -> None:
    cycles = int(os.environ.get("SOAK_CYCLES", "10000"))
    result = Path(os.environ.get("SOAK_RESULT", str(REPO / "build" / "soak.txt")))
    rng = random.Random(13)
    settings = {
        "cometchat": chat_settings(cometchat_emulator),
        "matrix": matrix_settings(synapse),
    }
    (REPO / "build").mkdir(exist_ok=True)
    done: collections.Counter[tuple[str, str, str]] = collections.Counter()
    matrix_tokens: list[str] = []
    faults = 0
    with servers(**settings) as apps:
        frameworks = ("django", "flask", "starlette")
        for n in range(cycles):
            provider = ("cometchat", "matrix")[n % 2]
            server = apps[(provider, frameworks[(n // 2) % len(frameworks)])]
            emulated = provider == "cometchat"
            endings = ENDINGS if emulated else ENDINGS[:3]
            if server.app.name == "django":
                endings += ("password-change",)
            ending = rng.choice(endings)
            visitor = Visitor(server)
            try:
                visitor.login("alice")
                if emulated and rng.random() < FAULT_RATE:
                    # The next provider call fails once; the core retries it.
                    cometchat_emulator.faults.status(503)
                    faults += 1
                issued = [visitor.token()]
                cometchat_emulator.faults.clear()
                if ending == "logout":
                    visitor.logout()
                elif ending == "password-change":
                    visitor.change_password()  # the session itself stays, then is abandoned
                elif ending == "switch":
                    visitor.login("bob")  # over alice's session, without a logout
                    # bob's session is then abandoned: the sweep's job
                    issued.append(visitor.token())
                elif ending == "logout-provider-down":
                    cometchat_emulator.faults.status(503, times=100, method="DELETE")
                    visitor.logout()
                    cometchat_emulator.faults.clear()
                # "abandon": the cookie jar is dropped with the visitor
            finally:
                visitor.close()
            if ending in ("logout", "switch", "password-change"):
                # alice's token dies with the ending itself, not with the sweep
                dead = (
                    not cometchat_emulator.is_token_alive(issued[0])
                    if emulated
                    else synapse_alive(synapse, issued[:1]) == 0
                )
                assert dead, (provider, server.app.name, ending)
            if not emulated:
                matrix_tokens += issued
            done[(provider, server.app.name, ending)] += 1

        # Abandoned and switched-from sessions leave live tokens only the sweep can end: proof
        # that the counts below measure something.
        before = alive(cometchat_emulator) + synapse_alive(synapse, matrix_tokens)
        assert before > 0 or cycles < 10
        # The sweep, as each machine's cron runs it, with the clock past every idle bound.
        rows = pending = 0
        for (provider, _), server in apps.items():
            store_file = server.workdir / "chatauth.sqlite3"
            service = chatauth.from_settings(
                {**settings[provider], "STORE": f"sqlite:///{store_file}"}
            )
            try:
                later = service.clock.now() + service.session_idle + timedelta(days=1)
                while service.sweep(now=later).swept:  # at most ``limit`` tokens per run
                    pass
                while service.revoke_pending().revoked:
                    pass
            finally:
                service.close()
            with contextlib.closing(SQLiteStore(store_file)) as store:
                rows += len(store.sessions())
                pending += store.count_pending()
    tokens = alive(cometchat_emulator) + synapse_alive(synapse, matrix_tokens)
    for (provider, framework, ending), count in sorted(done.items()):
        print(f"soak: {provider} {framework} {ending}: {count}")
    print(f"soak: {faults} provider faults injected; {before} tokens alive before the sweep")
    line = f"soak: {cycles} cycles, {tokens} tokens alive, {rows} rows, {pending} pending"
    result.write_text(line + "\n")
    print(line)
    assert (tokens, rows, pending) == (0, 0, 0), line
