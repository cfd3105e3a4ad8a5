"""The lifecycle soak (issue 13): many cycles through the three sample apps, each a real
server process, of login -> token -> one ending, then the sweep; no token may outlive it.

Two providers whose tokens never expire, each behind its own three app servers: the CometChat
emulator (one per framework, so a fault injected for one server's cycle meets that server's
requests only) and a real Synapse in JWT-login mode. Cycle ``n`` goes to provider ``n % 2``
and framework ``(n // 2) % 3``; its ending and its fault are drawn from a generator seeded
with ``n``, so a cycle does the same whatever runs beside it. The endings: ``logout``,
``abandon`` (the cookie jar is thrown away), ``switch`` (another user logs in over the
session, no logout), ``logout-store-down`` (another process holds the app's SQLite store
locked for longer than its ``STORE_TIMEOUT``: the logout still answers its redirect and the
end is journaled), on Django ``password-change`` (every session of the user ends) and, on the
emulator, ``logout-provider-down`` (every revocation call fails: queued). A logout, a switch
or a password change must kill the token at once (checked at the provider in every cycle). On
the emulator one token request in ten meets an injected provider fault (a 503, retried by the
core); Synapse is real and takes no injected faults.

The servers are soaked at once, as production traffic would: ``SOAK_VISITORS`` browsers
(default 2) per server run their cycles concurrently, each keeping its HTTP connection between
its visitors (a new visitor is a new cookie jar). Endings that act on more than their own app
session (a password change ends every session of the user; a held store lock, a provider
outage and an injected fault meet every request of the server) run while the server's other
visitors wait.

After the cycles, the sweep runs over each app's store twice: at the real time first, which
finishes the journaled logouts (their tokens must then be dead at the provider), then with
``now`` past ``SESSION_IDLE`` (the clock is passed, not waited for); then the queued
revocations are retried. Counts come from the providers (emulator tokens that would still log
in; Synapse tokens ``/account/whoami`` still accepts) and the stores (rows, queued
revocations).

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
import sqlite3
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import httpx

import chatauth
from chatauth.journal import EndJournal
from chatauth.stores.sqlite import SQLiteStore
from chatauth.testing.cometchat import DEFAULT_API_KEY, DEFAULT_APP_ID, CometChatEmulator
from sample_projects.csrf import FIELD, token_in
from tests.e2e.browser.apps import REPO, AppServer
from tests.servers.deadlines import REQUEST_DEADLINE
from tests.servers.synapse import SynapseServer
from tests.soak.apps import SOAK_APPS

PASSWORDS = {"alice": "wonderland", "bob": "builder"}
ENDINGS = ("logout", "abandon", "switch", "logout-store-down", "logout-provider-down")
#: Endings that touch more than the visitor's own app session: run alone on their server.
ALONE = frozenset({"password-change", "logout-store-down", "logout-provider-down"})
FRAMEWORKS = ("django", "flask", "starlette")
PROVIDERS = ("cometchat", "matrix")
FAULT_RATE = 0.1
#: The samples' STORE_TIMEOUT: how long a logout waits for the held store before it journals.
STORE_TIMEOUT = "1"
CSRF = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
STORE_FILE = "chatauth.sqlite3"


def matrix_settings(synapse: SynapseServer) -> dict[str, str]:
    """Synapse in JWT-login mode: one device (and token) per app session, never expiring."""
    return {
        "PROVIDER": "matrix",
        "MATRIX_HOMESERVER_URL": synapse.base_url,
        "MATRIX_SERVER_NAME": synapse.server_name,
        "MATRIX_JWT_SECRET": synapse.jwt_secret,
        "STORE_TIMEOUT": STORE_TIMEOUT,
    }


def chat_settings(emulator: CometChatEmulator) -> dict[str, str]:
    return {
        "PROVIDER": "cometchat",
        "COMETCHAT_APP_ID": DEFAULT_APP_ID,
        "COMETCHAT_API_KEY": DEFAULT_API_KEY,
        "COMETCHAT_BASE_URL": emulator.base_url,
        # Two tries: a logout with the provider down costs one backoff wait, not two.
        "RETRY_ATTEMPTS": "2",
        "STORE_TIMEOUT": STORE_TIMEOUT,
    }


def whoami_alive(client: httpx.Client, tokens: list[str]) -> int:
    """How many of ``tokens`` Synapse still accepts (``client`` is bound to Synapse)."""
    count = 0
    for token in tokens:
        answer = client.get(
            "/_matrix/client/v3/account/whoami", headers={"Authorization": f"Bearer {token}"}
        )
        assert answer.status_code in (200, 401), answer.text
        count += answer.status_code == 200
    return count


@contextlib.contextmanager
def store_held(path: Path) -> Iterator[None]:
    """Another process's long write transaction on the app's store (a backup, a stuck
    worker): the app's writes find the database locked until it ends."""
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as other:
        other.execute("BEGIN EXCLUSIVE")
        try:
            yield
        finally:
            other.execute("ROLLBACK")


class SharedOrAlone:
    """A readers-writer lock: ordinary cycles share their server, an ``ALONE`` ending has it
    to itself (it waits for the running cycles, and new ones wait for it)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._shared = 0
        self._alone = False

    @contextlib.contextmanager
    def hold(self, alone: bool) -> Iterator[None]:
        with self._cond:
            if alone:
                self._cond.wait_for(lambda: not self._alone)
                self._alone = True  # new shared holders wait from now on
                self._cond.wait_for(lambda: self._shared == 0)
            else:
                self._cond.wait_for(lambda: not self._alone)
                self._shared += 1
        try:
            yield
        finally:
            with self._cond:
                if alone:
                    self._alone = False
                else:
                    self._shared -= 1
                self._cond.notify_all()


@dataclass
class Site:
    """One sample app server for one provider, and what the soak keeps about it."""

    provider: str
    server: AppServer
    emulator: CometChatEmulator | None
    turn: SharedOrAlone = field(default_factory=SharedOrAlone)

    @property
    def framework(self) -> str:
        return self.server.app.name

    @property
    def store_file(self) -> Path:
        return self.server.workdir / STORE_FILE

    @property
    def journal(self) -> EndJournal:
        # The samples' default JOURNAL: beside the SQLite store.
        return EndJournal(self.server.workdir / (STORE_FILE + ".ends"))


class Visitor:
    """One browser on one sample app, through its own forms. :meth:`new` throws the cookie
    jar away (the next visitor), keeping the HTTP connection, as a proxy would."""

    def __init__(self, server: AppServer) -> None:
        self.server = server
        self.client = httpx.Client(base_url=server.base_url, timeout=REQUEST_DEADLINE)

    def new(self) -> None:
        self.client.cookies.clear()

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
        # The app's own answer (a redirect), whatever the provider or the store does: never
        # a 500.
        assert answer.status_code in (302, 303), (self.server.app.name, answer.status_code)


@dataclass
class Tally:
    """What the cycles did, gathered from every visitor thread."""

    done: collections.Counter[tuple[str, str, str]] = field(default_factory=collections.Counter)
    matrix_tokens: list[str] = field(default_factory=list)
    journaled: list[tuple[str, str]] = field(default_factory=list)  # (provider, token)
    faults: int = 0
    seconds: collections.Counter[str] = field(default_factory=collections.Counter)
    guard: threading.Lock = field(default_factory=threading.Lock)


def ending_of(n: int, site: Site) -> tuple[str, bool]:
    """Cycle ``n``'s ending and whether its token request meets a provider fault."""
    rng = random.Random(f"soak-13-{n}")
    endings = ENDINGS if site.emulator is not None else ENDINGS[:4]
    if site.framework == "django":
        endings += ("password-change",)
    ending = rng.choice(endings)
    return ending, site.emulator is not None and rng.random() < FAULT_RATE


def cycle(n: int, site: Site, visitor: Visitor, synapse: httpx.Client, tally: Tally) -> None:
    """One cycle: login -> token -> the ending, with the checks that belong to it."""
    ending, fault = ending_of(n, site)
    emulator = site.emulator
    began = time.monotonic()
    visitor.new()
    # A fault is injected alone too: the emulator's next call fails, whoever makes it.
    with site.turn.hold(alone=ending in ALONE or fault):
        visitor.login("alice")
        if fault and emulator is not None:
            # The next provider call fails once; the core retries it.
            emulator.faults.status(503)
        issued = [visitor.token()]
        if emulator is not None:
            emulator.faults.clear()
        if ending == "logout":
            visitor.logout()
        elif ending == "password-change":
            visitor.change_password()  # the session itself stays, then is abandoned
        elif ending == "switch":
            visitor.login("bob")  # over alice's session, without a logout
            # bob's session is then abandoned: the sweep's job
            issued.append(visitor.token())
        elif ending == "logout-store-down":
            before = len(site.journal)
            with store_held(site.store_file):
                visitor.logout()
            # Proof that the store really was down for the logout: the end was journaled.
            assert len(site.journal) == before + 1, (site.provider, site.framework)
        elif ending == "logout-provider-down":
            assert emulator is not None
            emulator.faults.status(503, times=100, method="DELETE")
            visitor.logout()
            emulator.faults.clear()
        # "abandon": the next visitor throws the cookie jar away
    if ending in ("logout", "switch", "password-change"):
        # alice's token dies with the ending itself, not with the sweep
        dead = (
            not emulator.is_token_alive(issued[0])
            if emulator is not None
            else whoami_alive(synapse, issued[:1]) == 0
        )
        assert dead, (site.provider, site.framework, ending)
    with tally.guard:
        if emulator is None:
            tally.matrix_tokens += issued
        if ending == "logout-store-down":
            tally.journaled.append((site.provider, issued[0]))
        tally.faults += fault
        tally.seconds[f"{site.framework} {ending}"] += time.monotonic() - began
        tally.done[(site.provider, site.framework, ending)] += 1


def run_cycles(
    sites: dict[tuple[str, str], Site],
    cycles: int,
    visitors: int,
    synapse_url: str,
    tally: Tally,
) -> None:
    """Every site's cycles, ``visitors`` browsers per site at once; the first failure stops
    the others and is raised."""
    queues: dict[tuple[str, str], collections.deque[int]] = {k: collections.deque() for k in sites}
    for n in range(cycles):
        queues[(PROVIDERS[n % 2], FRAMEWORKS[(n // 2) % 3])].append(n)
    stop = threading.Event()

    def browse(key: tuple[str, str]) -> None:
        site, queue = sites[key], queues[key]
        visitor = Visitor(site.server)
        try:
            with httpx.Client(base_url=synapse_url, timeout=REQUEST_DEADLINE) as synapse:
                while not stop.is_set():
                    try:
                        n = queue.popleft()  # deque.popleft is atomic
                    except IndexError:
                        return
                    cycle(n, site, visitor, synapse, tally)
        except BaseException:
            stop.set()
            raise
        finally:
            visitor.close()

    with ThreadPoolExecutor(max_workers=len(sites) * visitors) as pool:
        futures = [pool.submit(browse, key) for key in sites for _ in range(visitors)]
        wait(futures, return_when=FIRST_EXCEPTION)
        for future in futures:
            future.result()  # raises the first failure (the others stop at their next cycle)


@contextlib.contextmanager
def servers(
    settings: dict[tuple[str, str], dict[str, str]],
) -> Iterator[dict[tuple[str, str], AppServer]]:
    """The three samples as real server processes per provider (``settings`` by (provider,
    framework)), started in parallel and each stopped by PID at the end."""
    started: dict[tuple[str, str], AppServer] = {}
    root = Path(tempfile.mkdtemp(prefix="chatauth-soak-", dir=REPO / "build"))
    try:
        for (provider, name), chat in settings.items():
            workdir = root / f"{provider}-{name}"
            workdir.mkdir()
            started[(provider, name)] = AppServer(SOAK_APPS[name], chat, workdir)
        with ThreadPoolExecutor(max_workers=len(started)) as pool:
            for future in [pool.submit(server.start) for server in started.values()]:
                future.result()
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


def emulated_alive(emulators: list[CometChatEmulator]) -> int:
    return sum(len(e.tokens_of(uid)) for e in emulators for uid in e.users)


def sweep_all(
    sites: dict[tuple[str, str], Site],
    settings: dict[tuple[str, str], dict[str, str]],
    pass_idle: bool,
) -> tuple[int, int]:
    """Run the sweep over every site's store, as each machine's cron runs it, then retry the
    queued revocations. With ``pass_idle`` the clock is past every idle bound.

    Returns:
        (journaled ends finished, tokens swept).
    """
    journaled = swept = 0
    for key, site in sites.items():
        service = chatauth.from_settings({**settings[key], "STORE": f"sqlite:///{site.store_file}"})
        try:
            later = service.clock.now() + service.session_idle + timedelta(days=1)
            while True:  # at most ``limit`` tokens per run
                report = service.sweep(now=later if pass_idle else None)
                journaled += report.journaled
                swept += report.swept
                if not report.swept:
                    break
            while service.revoke_pending().revoked:
                pass
        finally:
            service.close()
    return journaled, swept


def alive_now(emulators: list[CometChatEmulator], synapse: SynapseServer, tokens: list[str]) -> int:
    with httpx.Client(base_url=synapse.base_url, timeout=REQUEST_DEADLINE) as client:
        return emulated_alive(emulators) + whoami_alive(client, tokens)


def token_alive(
    provider: str,
    token: str,
    emulators: dict[str, CometChatEmulator],
    synapse: httpx.Client,
) -> bool:
    if provider == "matrix":
        return whoami_alive(synapse, [token]) == 1
    return any(e.is_token_alive(token) for e in emulators.values())


def test_soak(
    serve_emulator: Callable[[CometChatEmulator], CometChatEmulator], synapse: SynapseServer
) -> None:
    cycles = int(os.environ.get("SOAK_CYCLES", "10000"))
    visitors = int(os.environ.get("SOAK_VISITORS", "2"))
    result = Path(os.environ.get("SOAK_RESULT", str(REPO / "build" / "soak.txt")))
    # CometChat keeps a user's newest 100 tokens valid and destroys older ones; here none is
    # destroyed that way, so every token must be ended by chatauth.
    emulators = {
        name: serve_emulator(CometChatEmulator(max_tokens_per_user=cycles + 1))
        for name in FRAMEWORKS
    }
    settings = {("cometchat", name): chat_settings(emulators[name]) for name in FRAMEWORKS} | {
        ("matrix", name): matrix_settings(synapse) for name in FRAMEWORKS
    }
    (REPO / "build").mkdir(exist_ok=True)
    tally = Tally()
    with servers(settings) as apps:
        sites = {
            key: Site(key[0], server, emulators[key[1]] if key[0] == "cometchat" else None)
            for key, server in apps.items()
        }
        started = time.monotonic()
        run_cycles(sites, cycles, visitors, synapse.base_url, tally)
        elapsed = time.monotonic() - started

        # Abandoned and switched-from sessions and journaled logouts leave live tokens only
        # the sweep can end: proof that the counts below measure something.
        before = alive_now(list(emulators.values()), synapse, tally.matrix_tokens)
        assert before > 0 or cycles < 10

        # The sweep at the real time: nothing is idle yet, but the journaled logouts are
        # finished (their tokens die now, not with idleness).
        journaled, _ = sweep_all(sites, settings, pass_idle=False)
        assert journaled == len(tally.journaled)
        with httpx.Client(base_url=synapse.base_url, timeout=REQUEST_DEADLINE) as client:
            for provider, token in tally.journaled:
                assert not token_alive(provider, token, emulators, client), provider
        # Then the sweep with the clock past every idle bound.
        sweep_all(sites, settings, pass_idle=True)
        rows = pending = 0
        for site in sites.values():
            with contextlib.closing(SQLiteStore(site.store_file)) as store:
                rows += len(store.sessions())
                pending += store.count_pending()
            assert len(site.journal) == 0
    tokens = alive_now(list(emulators.values()), synapse, tally.matrix_tokens)
    for (provider, framework, ending), count in sorted(tally.done.items()):
        print(f"soak: {provider} {framework} {ending}: {count}")
    per_ending = collections.Counter()
    for (_, framework, ending), count in tally.done.items():
        per_ending[f"{framework} {ending}"] += count
    for name, total in sorted(tally.seconds.items()):
        print(f"soak: {name}: {total / per_ending[name]:.2f} s per cycle (wall, waits included)")
    print(
        f"soak: {tally.faults} provider faults injected; {before} tokens alive before the "
        f"sweep; {len(tally.journaled)} logouts journaled (store down)"
    )
    print(
        f"soak: {cycles} cycles in {elapsed:.1f} s ({elapsed / max(cycles, 1):.3f} s/cycle, "
        f"{visitors} visitors per server)"
    )
    line = f"soak: {cycles} cycles, {tokens} tokens alive, {rows} rows, {pending} pending"
    result.write_text(line + "\n")
    print(line)
    assert (tokens, rows, pending) == (0, 0, 0), line
