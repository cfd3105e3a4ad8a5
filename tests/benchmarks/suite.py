"""The benchmark suite of issue 19: chatauth's hot path against the bare app, as ratios.

Run with ``tox -e bench`` (``python -m tests.benchmarks.suite [--rounds N] [--only TEXT]``);
never part of the default test run, never a timed assertion. Every figure is a ratio of
paired rounds taken in turn, A B B A A B ... (at least 7 pairs): pairing keeps a ratio meaningful
while this busy machine's speed drifts; the median is the figure, min..max its spread. A
bare-vs-bare control row shows the noise floor. HTTP rows use real servers on 127.0.0.1
(uvicorn, waitress), each stopped by PID in a ``finally``, and ``wrk`` as the load generator.

Writes ``benchmarks/results.md`` and ``benchmarks/results.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import gc
import json
import os
import platform
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from importlib.metadata import version
from pathlib import Path
from typing import Any

import httpx

from tests.benchmarks import apps
from tests.servers.processes import start_process, stop_process

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "benchmarks"


@dataclasses.dataclass
class Row:
    """One figure: ``ratio`` of A over B per pair; ``op``/``target`` say what is wanted."""

    name: str
    op: str  # ">=", "<=" or "=="
    target: float
    ratios: list[float] = dataclasses.field(default_factory=list)
    unit: str = ""  # "" a plain ratio, "x" a cost multiple

    @property
    def ratio(self) -> float:
        return statistics.median(self.ratios)

    @property
    def met(self) -> bool:
        value = self.ratio
        if self.op == ">=":
            return value >= self.target
        if self.op == "<=":
            return value <= self.target
        return value == self.target

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "ratio": round(self.ratio, 3),
            "min": round(min(self.ratios), 3),
            "max": round(max(self.ratios), 3),
            "target": f"{self.op} {self.target:g}",
            "met": self.met,
        }


def paired(a: Callable[[], float], b: Callable[[], float], rounds: int) -> list[float]:
    """``a() / b()`` for each of ``rounds`` pairs run in turn, after one unrecorded warm-up
    pair. Every other pair runs B first (A B, B A, A B ...): whatever favours the first (or
    second) of two back-to-back rounds favours each side equally often."""
    a()
    b()
    ratios = []
    for index in range(rounds):
        if index % 2:
            second = _clean(b)
            first = _clean(a)
        else:
            first = _clean(a)
            second = _clean(b)
        ratios.append(first / second)
    return ratios


def _clean(measure: Callable[[], float]) -> float:
    """``measure()`` after a full garbage collection: every round starts with the same
    heap, rather than one round paying for the setup's garbage (the GC stays on during the
    round, as in the app)."""
    gc.collect()
    return measure()


# -- in-process ASGI and WSGI ----------------------------------------------------------------
class ASGIDriver:
    """Calls an ASGI app directly (no client library in the way), with one cookie."""

    def __init__(self, app: Any, loop: asyncio.AbstractEventLoop) -> None:
        self.app = app
        self.loop = loop
        self.cookie = b""

    async def _call(self, method: str, path: str) -> tuple[int, list[tuple[bytes, bytes]]]:
        headers = [(b"host", b"bench")]
        if self.cookie:
            headers.append((b"cookie", self.cookie))
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": headers,
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 80),
        }
        start: dict[str, Any] = {}

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                start.update(message)

        await self.app(scope, receive, send)
        return start["status"], start.get("headers", [])

    def request(self, method: str, path: str) -> int:
        """One request; keeps the session cookie the app sets."""
        status, headers = self.loop.run_until_complete(self._call(method, path))
        for name, value in headers:
            if name == b"set-cookie":
                self.cookie = value.split(b";", 1)[0]
        return status

    def rate(self, path: str, n: int) -> float:
        """Requests per CPU second over ``n`` GETs of ``path`` (each must answer 200); see
        :func:`cpu_seconds`."""

        async def run() -> None:
            for _ in range(n):
                status, _ = await self._call("GET", path)
                assert status == 200, (path, status)

        began = cpu_seconds()
        self.loop.run_until_complete(run())
        return n / (cpu_seconds() - began)


def cpu_seconds() -> float:
    """The CPU time of this process (all its threads), the clock of every in-process row.

    Not wall time: on a machine shared with other work, wall time also counts the moments
    this process waited for a core, which say nothing about chatauth and vary from one round
    to the next. CPU time counts the work done, here, for the requests (a worker thread's
    too). The HTTP rows count the server process's CPU time the same way (:func:`wrk_rate`).
    """
    return time.process_time()


def logged_in(driver: ASGIDriver, chat: bool) -> ASGIDriver:
    assert driver.request("POST", "/login/alice") == 200
    if chat:  # the first chat read binds the chat session id into the app session
        assert driver.request("GET", "/chat/token") == 200
    return driver


# -- servers and wrk -------------------------------------------------------------------------
def serve(kind: str, variant: str, store: str, log: Path) -> tuple[subprocess.Popen[bytes], int]:
    """Start ``tests.benchmarks.apps`` on a port it really got; the caller stops it."""

    def probe(port: int) -> str | None:
        try:
            httpx.get(f"http://127.0.0.1:{port}/plain", timeout=1.0)
        except httpx.HTTPError as exc:
            return type(exc).__name__
        return None

    return start_process(
        lambda port: [
            sys.executable,
            "-m",
            "tests.benchmarks.apps",
            kind,
            str(port),
            variant,
            store,
            str(log.parent),
        ],
        probe,
        name=f"{kind} {variant}",
        what="answer",
        log_path=log,
        cwd=ROOT,
    )


def http_cookie(port: int, chat: bool) -> str:
    with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
        assert client.post("/login/alice").status_code == 200
        if chat:
            assert client.get("/chat/token").status_code == 200
        return "; ".join(f"{k}={v}" for k, v in client.cookies.items())


#: ``taskset`` arguments putting wrk on the cores the servers do not use (set by :func:`pin`).
WRK_PREFIX: list[str] = []


def pin() -> str:
    """Keep the load generator off the servers' core: this process (and so every server it
    starts, and the in-process rounds) runs on the last core it may use, wrk on the others.
    Two programs sharing cores by the scheduler's whim made the HTTP rows' spread wider
    than the effects measured. Returns what was done, for the results header."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2 or shutil.which("taskset") is None:
        return "not pinned (one core, or no taskset)"
    os.sched_setaffinity(0, {cpus[-1]})
    others = ",".join(str(c) for c in cpus[:-1])
    WRK_PREFIX[:] = ["taskset", "-c", others]
    return f"servers and in-process rounds on core {cpus[-1]}, wrk on core(s) {others}"


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system, all threads) the process ``pid`` has used, from
    ``/proc/<pid>/stat``."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wrk_rate(server: int, port: int, path: str, cookie: str, seconds: float) -> float:
    """Requests per CPU second of the server process ``server`` while ``wrk`` (1 thread, 16
    connections) loads ``path`` for ``seconds``; non-2xx answers fail the run.

    The server's CPU time, not wrk's wall-clock rate: on a machine shared with other work
    (wrk itself included) the wall-clock rate also measures how often the server waited for
    a core, which the pairing of rounds cancels only in part (see :func:`cpu_seconds`)."""
    began = process_cpu(server)
    out = subprocess.run(
        [
            *WRK_PREFIX,
            "wrk",
            "-t1",
            "-c16",
            f"-d{seconds:g}s",
            "-H",
            f"Cookie: {cookie}",
            f"http://127.0.0.1:{port}{path}",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    used = process_cpu(server) - began
    assert "Non-2xx" not in out, out
    match = re.search(r"(\d+) requests in", out)
    assert match, out
    return int(match.group(1)) / used


# -- the rows --------------------------------------------------------------------------------
class Suite:
    def __init__(self, rounds: int, only: str | None, seconds: float) -> None:
        self.rounds = rounds
        self.only = only
        self.seconds = seconds
        self.rows: list[Row] = []
        self.notes: dict[str, str] = {}
        self.pinning = "not pinned"
        self.load_before = os.getloadavg()
        self.tmp = Path(tempfile.mkdtemp(prefix="chatauth-bench-"))

    def row(
        self,
        name: str,
        op: str,
        target: float,
        a: Callable[[], float],
        b: Callable[[], float],
        unit: str = "",
        also: str = "",
    ) -> None:
        """Run and record the row ``name`` unless ``--only`` names neither it nor ``also`` (a
        row that comes out of the same rounds)."""
        if not self.wanted(name, also):
            return
        row = Row(name, op, target, paired(a, b, self.rounds), unit)
        self.rows.append(row)
        print(
            f"{row.ratio:8.3f}  [{min(row.ratios):.3f}..{max(row.ratios):.3f}]  {name}", flush=True
        )

    def wanted(self, *names: str) -> bool:
        return not self.only or any(self.only.lower() in n.lower() for n in names if n)

    # Starlette in process
    def starlette_in_process(self) -> None:
        loop = asyncio.new_event_loop()
        try:
            n = 2000
            bare = logged_in(ASGIDriver(apps.starlette_app("bare"), loop), chat=False)
            bare2 = logged_in(ASGIDriver(apps.starlette_app("bare"), loop), chat=False)
            mem = logged_in(ASGIDriver(apps.starlette_app("chat", "memory://"), loop), chat=True)
            sqlite = logged_in(
                ASGIDriver(apps.starlette_app("chat", f"sqlite:///{self.tmp}/s.db"), loop),
                chat=True,
            )
            self.row(
                "control: Starlette bare vs bare, in-process",
                ">=",
                0.98,
                lambda: bare2.rate("/plain", n),
                lambda: bare.rate("/plain", n),
            )
            self.row(
                "Starlette /chat/token cached (JWT, memory) vs a Stream token minted per "
                "request with stream_chat, in-process",
                ">=",
                1.5,
                lambda: mem.rate("/chat/token", n),
                lambda: bare.rate("/stream-token", n),
            )
            layer = logged_in(ASGIDriver(apps.starlette_app("layer"), loop), chat=False)
            self.row(
                "control: Starlette with a do-nothing ASGI middleware vs without, in-process "
                "(what any middleware costs here)",
                ">=",
                0.98,
                lambda: layer.rate("/plain", n),
                lambda: bare.rate("/plain", n),
            )
            self.row(
                "Starlette, route that never reads chat, in-process",
                ">=",
                0.98,
                lambda: mem.rate("/plain", n),
                lambda: bare.rate("/plain", n),
            )
            self.row(
                "Starlette, route reading a cached token (memory), in-process",
                ">=",
                0.90,
                lambda: mem.rate("/chat/uid", n),
                lambda: bare.rate("/me", n),
            )
            self.row(
                "Starlette, route reading a cached token (SQLite), in-process",
                ">=",
                0.90,
                lambda: sqlite.rate("/chat/uid", n),
                lambda: bare.rate("/me", n),
            )
            # The floors: the part of the cost above that no middleware giving the README's
            # API can avoid, measured against the same targets.
            carrying = ASGIDriver(apps.starlette_app("layer"), loop)
            carrying.cookie = mem.cookie  # the bare app's login, plus chatauth's session id
            self.row(
                "floor: Starlette with a do-nothing ASGI middleware, the session cookie "
                "carrying chatauth's id, route that never reads chat, in-process",
                ">=",
                0.98,
                lambda: carrying.rate("/plain", n),
                lambda: bare.rate("/plain", n),
            )
            lazy = logged_in(ASGIDriver(apps.starlette_app("lazy"), loop), chat=True)
            self.row(
                "floor: Starlette with request.state.chat alone (chatauth's middleware "
                "without its response-start check), route that never reads chat, in-process",
                ">=",
                0.98,
                lambda: lazy.rate("/plain", n),
                lambda: bare.rate("/plain", n),
            )
            self.row(
                "floor: Starlette with request.state.chat alone (chatauth's middleware "
                "without its response-start check), route reading a cached token (memory), "
                "in-process",
                ">=",
                0.90,
                lambda: lazy.rate("/chat/uid", n),
                lambda: bare.rate("/me", n),
            )
        finally:
            loop.close()

    # HTTP rows: two servers, wrk
    def http_pair(self, kind: str, store: str, rows: list[tuple[str, float, str, str]]) -> None:
        rows = [r for r in rows if self.wanted(r[0])]
        if not rows:
            return
        procs: list[subprocess.Popen[bytes]] = []
        try:
            bare, bare_port = serve(kind, "bare", store, self.tmp / f"{kind}-bare.log")
            procs.append(bare)
            chat, chat_port = serve(kind, "chat", store, self.tmp / f"{kind}-chat.log")
            procs.append(chat)
            bare_cookie = http_cookie(bare_port, chat=False)
            chat_cookie = http_cookie(chat_port, chat=True)
            for name, target, a_path, b_path in rows:
                a_pid, a_port, a_cookie = (
                    (bare.pid, bare_port, bare_cookie)
                    if "control" in name
                    else (chat.pid, chat_port, chat_cookie)
                )
                self.row(
                    name,
                    ">=",
                    target,
                    lambda pid=a_pid, p=a_port, c=a_cookie, path=a_path: wrk_rate(
                        pid, p, path, c, self.seconds
                    ),
                    lambda path=b_path: wrk_rate(
                        bare.pid, bare_port, path, bare_cookie, self.seconds
                    ),
                )
        finally:
            for proc in procs:
                stop_process(proc)

    def http_rows(self) -> None:
        sqlite = f"sqlite:///{self.tmp}/http.db"
        self.http_pair(
            "starlette",
            "memory://",
            [
                ("control: Starlette bare vs bare, uvicorn + wrk", 0.98, "/plain", "/plain"),
                ("Starlette, route that never reads chat, uvicorn + wrk", 0.98, "/plain", "/plain"),
                (
                    "Starlette, route reading a cached token (memory), uvicorn + wrk",
                    0.90,
                    "/chat/uid",
                    "/me",
                ),
            ],
        )
        self.http_pair(
            "starlette",
            sqlite,
            [
                (
                    "Starlette, route reading a cached token (SQLite), uvicorn + wrk",
                    0.90,
                    "/chat/uid",
                    "/me",
                ),
            ],
        )
        self.http_pair(
            "flask",
            "memory://",
            [
                ("Flask, route that never reads chat, waitress + wrk", 0.98, "/plain", "/plain"),
                ("Flask current_chat cached (memory), waitress + wrk", 0.90, "/chat/uid", "/me"),
            ],
        )
        self.http_pair(
            "flask",
            f"sqlite:///{self.tmp}/flask.db",
            [
                ("Flask current_chat cached (SQLite), waitress + wrk", 0.90, "/chat/uid", "/me"),
            ],
        )
        for label, store in (
            ("memory", "memory://"),
            ("SQLite", f"sqlite:///{self.tmp}/dj.db"),
            ("ORM", "django"),
        ):
            self.http_pair(
                "django",
                store,
                [
                    (
                        f"Django request.chat cached ({label}), waitress + wrk",
                        0.90,
                        "/chat/uid",
                        "/me",
                    ),
                    (
                        f"Django /chat/token cached ({label}) vs a bare JSON view, waitress + wrk",
                        0.90,
                        "/chat/token",
                        "/me",
                    ),
                ],
            )

    # Minting
    def minting(self) -> None:
        import jwt as pyjwt
        from stream_chat import StreamChat

        from chatauth import ChatIdentity
        from chatauth.providers.jwt import JWTProvider, JWTSigner
        from chatauth.providers.stream import StreamProvider
        from chatauth.tokens import ChatToken, utcnow

        n = 3000
        provider = JWTProvider(JWTSigner(secret=apps.JWT_SECRET))
        identity = ChatIdentity("user-alice")
        ttl = timedelta(hours=1)

        def issue() -> float:
            began = cpu_seconds()
            for _ in range(n):
                flow = provider.issue(identity, ttl)
                with contextlib.suppress(StopIteration):
                    next(flow)
            return cpu_seconds() - began

        now = utcnow().replace(microsecond=0)
        claims = provider.build_claims(identity, ttl, now)

        def encode() -> float:
            began = cpu_seconds()
            for _ in range(n):
                pyjwt.encode(claims, apps.JWT_SECRET, algorithm="HS256")
            return cpu_seconds() - began

        self.row(
            "JWTProvider.issue() cost vs jwt.encode with the same claims",
            "<=",
            1.2,
            issue,
            encode,
            unit="x",
        )

        stream = StreamProvider(apps.STREAM_KEY, apps.STREAM_SECRET)
        official = StreamChat(api_key=apps.STREAM_KEY, api_secret=apps.STREAM_SECRET)

        def ours() -> float:
            # What StreamProvider.issue does once the user exists: mint, wrap in a ChatToken.
            began = cpu_seconds()
            for _ in range(n):
                moment = utcnow().replace(microsecond=0)
                iat = int(moment.timestamp())
                ChatToken(
                    value=stream.create_token(
                        "user-alice", exp=iat + 3600, iat=iat, jti="abcdefghijklmnop"
                    ),
                    uid="user-alice",
                    provider="stream",
                    issued_at=moment,
                    expires_at=datetime.fromtimestamp(iat + 3600, timezone.utc),
                )
            return cpu_seconds() - began

        def theirs() -> float:
            began = cpu_seconds()
            for _ in range(n):
                iat = int(time.time())
                official.create_token("user-alice", exp=iat + 3600, iat=iat, jti="abcdefghijklmnop")
            return cpu_seconds() - began

        self.row(
            "Stream issue's mint vs stream_chat create_token(exp, iat, jti)",
            "<=",
            1.0,
            ours,
            theirs,
            unit="x",
        )

    # Single-flight
    def crowd(self) -> None:
        from chatauth import ChatAuth, ChatIdentity
        from chatauth.providers.jwt import JWTProvider, JWTSigner

        class Counting(JWTProvider):
            calls = 0

            def issue(self, identity: Any, ttl: Any) -> Any:
                Counting.calls += 1
                return super().issue(identity, ttl)

        loop = asyncio.new_event_loop()
        users = iter(range(10**9))

        async def crowd_of(chat: ChatAuth, identity: ChatIdentity) -> None:
            await asyncio.gather(*(chat.aget_session(identity, "s") for _ in range(1000)))

        try:

            def first() -> float:
                chat = ChatAuth(Counting(JWTSigner(secret=apps.JWT_SECRET)))
                # A service that has served before (its httpx client made), as in an app that
                # runs: the crowd is one user's first requests, not the service's start-up.
                loop.run_until_complete(chat.aget_session(ChatIdentity("user-warm"), "s"))
                identity = ChatIdentity(f"user-{next(users)}")
                Counting.calls = 0
                began = cpu_seconds()
                loop.run_until_complete(crowd_of(chat, identity))
                elapsed = cpu_seconds() - began
                calls.append(Counting.calls)
                return elapsed

            def cached() -> float:
                chat = ChatAuth(Counting(JWTSigner(secret=apps.JWT_SECRET)))
                identity = ChatIdentity(f"user-{next(users)}")
                loop.run_until_complete(chat.aget_session(identity, "s"))
                began = cpu_seconds()
                loop.run_until_complete(crowd_of(chat, identity))
                return cpu_seconds() - began

            calls: list[int] = []
            self.row(
                "1,000 concurrent first requests, one user: cost of the crowd vs 1,000 "
                "cached requests",
                "<=",
                1.2,
                first,
                cached,
                unit="x",
                also="1,000 concurrent first requests, one user: provider calls",
            )
            if calls:
                row = Row(
                    "1,000 concurrent first requests, one user: provider calls",
                    "==",
                    1,
                    [float(c) for c in calls[1:]],
                )
                self.rows.append(row)
                print(f"{row.ratio:8.3f}  {row.name}", flush=True)
        finally:
            loop.close()

    # Import time
    def import_time(self) -> None:
        env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}

        def run(code: str) -> Callable[[], float]:
            def timed() -> float:
                # The child's CPU time (user + system), for the reason of cpu_seconds().
                began = resource.getrusage(resource.RUSAGE_CHILDREN)
                subprocess.run([sys.executable, "-c", code], check=True, env=env)
                ended = resource.getrusage(resource.RUSAGE_CHILDREN)
                return (ended.ru_utime + ended.ru_stime) - (began.ru_utime + began.ru_stime)

            return timed

        self.row(
            'python -c "import chatauth" vs python -c pass',
            "<=",
            1.25,
            run("import chatauth"),
            run("pass"),
            unit="x",
        )

    # Memory
    def memory(self) -> None:
        if not self.wanted("memory"):
            return
        code = (
            "import resource, tracemalloc\n"
            "from chatauth import ChatIdentity\n"
            "from chatauth.providers.jwt import JWTProvider, JWTSigner\n"
            "from chatauth.service import ChatAuth\n"
            f"chat = ChatAuth(JWTProvider(JWTSigner(secret={apps.JWT_SECRET!r})))\n"
            "chat.get_session(ChatIdentity('user-warm'), 'warm')\n"
            "tracemalloc.start()\n"
            "before = tracemalloc.get_traced_memory()[0]\n"
            "for i in range(100_000):\n"
            "    chat.get_session(ChatIdentity(f'user-{i}'), f'session-{i:032d}')\n"
            "after = tracemalloc.get_traced_memory()[0]\n"
            # Read each again: now each is also kept in the process (LOCAL_CACHE).
            "for i in range(100_000):\n"
            "    chat.get_session(ChatIdentity(f'user-{i}'), f'session-{i:032d}')\n"
            "kept = tracemalloc.get_traced_memory()[0]\n"
            "tracemalloc.stop()\n"
            "rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
            "print((after - before) / 100_000, (kept - after) / 100_000, rss)\n"
        )
        out = subprocess.run(
            [sys.executable, "-c", code], check=True, capture_output=True, text=True
        ).stdout.split()
        per, kept, rss_kib = float(out[0]), float(out[1]), int(out[2])
        self.notes["memory"] = (
            f"Memory store, 100,000 users each with one cached session (JWT provider): "
            f"{per:,.0f} bytes per cached session (tracemalloc, the store's entries and "
            f"everything they hold), plus {kept:,.0f} bytes per session while the process "
            f"keeps it after a read (LOCAL_CACHE, at most 5 s by default; all 100,000 were "
            f"read again), peak RSS of the process {rss_kib / 1024:,.0f} MiB."
        )
        print(self.notes["memory"], flush=True)

    def run(self) -> None:
        """Every step; each runs only the rows ``--only`` names (:meth:`row`), and the HTTP
        steps start no server for a pair without one (:meth:`http_pair`)."""
        try:
            self.starlette_in_process()
            self.minting()
            self.crowd()
            self.import_time()
            self.http_rows()
            self.memory()
        finally:
            shutil.rmtree(self.tmp, ignore_errors=True)


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    packages = ["starlette", "uvicorn", "flask", "waitress", "pyjwt", "stream-chat", "httpx"]
    versions = ", ".join(f"{p} {version(p)}" for p in packages)
    wrk = subprocess.run(["wrk", "--version"], capture_output=True, text=True).stdout.split("\n")[0]
    return (
        f"{platform.system()} {platform.release()}, {os.cpu_count()} cores ({cpu}); "
        f"Python {platform.python_version()}; {versions}; {wrk.strip()}"
    )


def controls(suite: Suite) -> str:
    """The control rows' spreads, for the notes."""
    spreads = [
        f"{row.name.split(', ')[-1]}: {min(row.ratios):.2f}..{max(row.ratios):.2f}"
        for row in suite.rows
        if row.name.startswith("control")
    ]
    return "; ".join(spreads) or "no control row in this run"


def write(suite: Suite) -> None:
    OUT.mkdir(exist_ok=True)
    rows = [row.as_json() for row in suite.rows]
    (OUT / "results.json").write_text(json.dumps(rows, indent=2) + "\n")
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# Benchmark results",
        "",
        "Written by `tox -e bench` (`tests/benchmarks/suite.py`); do not edit by hand.",
        "",
        f"- Date: {when}",
        f"- Machine: {machine()}",
        f"- Cores: {suite.pinning}.",
        f"- Each ratio is the median of {suite.rounds} pairs of rounds run in turn "
        "(A B, B A, A B ...), after a warm-up pair; the spread is the lowest and highest "
        "pair. Throughput ratios are with chatauth / the bare app (higher is better); "
        "rows marked x are cost multiples (lower is better). The control rows compare two "
        "identical bare apps: their spread is the noise floor of this machine.",
        f"- Load: measured on a shared, loaded machine (1-minute load average "
        f"{suite.load_before[0]:.1f} when the run began, {os.getloadavg()[0]:.1f} when it "
        f"ended, on {os.cpu_count()} cores). Pairing rounds cancels most of that; what it "
        f"leaves shows in the control rows' spread ({controls(suite)}). In-process rows "
        "(and the minting and crowd rows) are timed in CPU seconds of the benchmark process, "
        "the import row in the CPU seconds of its child processes, the HTTP rows in the CPU "
        "seconds of the server process per request wrk completed, not wall time (see "
        "`cpu_seconds`, `wrk_rate`).",
        "",
        "| figure | ratio | spread | target | met |",
        "|---|---|---|---|---|",
    ]
    for row in suite.rows:
        lines.append(
            f"| {row.name} | {row.ratio:.2f}{row.unit} "
            f"| {min(row.ratios):.2f}..{max(row.ratios):.2f} "
            f"| {row.op} {row.target:g}{row.unit} | {'yes' if row.met else 'no'} |"
        )
    if suite.notes:
        lines += ["", "## Memory", ""] + [f"- {note}" for note in suite.notes.values()]
    (OUT / "results.md").write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--seconds", type=float, default=2.0, help="wrk's duration per round")
    parser.add_argument("--only", help="run only the rows whose name contains this text")
    parser.add_argument("--no-write", action="store_true", help="print, do not write results")
    args = parser.parse_args()
    if args.rounds < 7:
        parser.error("--rounds must be at least 7")
    if shutil.which("wrk") is None:
        parser.error("wrk is needed for the HTTP rows: apt-get install -y wrk")
    # A SIGTERM (tox, a CI timeout) unwinds through the finally blocks that stop the servers.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    pinning = pin()
    suite = Suite(args.rounds, args.only, args.seconds)
    suite.pinning = pinning
    suite.run()
    if args.only and not suite.rows and "memory" not in suite.notes:
        parser.error(f"no row's name contains {args.only!r} (see benchmarks/results.md)")
    if not args.no_write:
        write(suite)


if __name__ == "__main__":
    main()
