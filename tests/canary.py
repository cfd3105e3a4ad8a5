"""The secret canary: every test runs watched for leaked secrets and tokens.

The suite's secrets are canaries (:mod:`chatauth.testing.canary`: the emulators' credentials,
the shared settings' JWT and session secrets, Synapse's per-run secrets) and the emulators mint
canary-marked tokens; JWTs and Synapse access tokens are recognised by their shape. While a test
runs, this plugin looks at:

- **every log record of every logger at every level**, DEBUG included, whatever the logger's
  level, handlers or ``propagate`` (``Logger.isEnabledFor`` answers yes, and ``Logger.handle``
  scans each record -- message, exception and stack text -- after the logger's own filters,
  which may scrub it, and hands it on only where the logger's own level would have let it
  through, so no handler sees anything new);
- **response bodies** from Django's and Werkzeug's test clients, and from httpx (Starlette's
  TestClient, the real-server tests): secrets everywhere; tokens everywhere in the test clients'
  answers except the ``token`` of a chat-session body (the owner's own token endpoint and
  refresh answers), and in httpx answers only in error bodies (a provider's 2xx answer hands a
  token over by design);
- **reprs and messages**: every ``ChatAuthError`` as it is made (``str`` and ``repr``), and the
  service, provider and store of every ``ChatAuth`` when the test ends;
- **command output**: Django's ``OutputWrapper``, ``click.echo`` (Flask's CLI),
  ``chatauth.cli.main``'s ``out``, ``subprocess.run`` captures, and the test's captured
  stdout and stderr.

A test that leaked fails (at its end, after its fixtures are torn down) with where each hit was
and what it was -- a canary's name or a token's kind, never the value. The terminal summary
gives the counts scanned. The cost is a substring check per text (the regular expression runs
only on texts holding a hint) plus building the DEBUG records nobody asked for.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import subprocess
import threading
import traceback
import weakref
from collections.abc import Callable, Generator, Iterator
from typing import Any

import httpx
import pytest

from chatauth.testing import canary

__all__ = ["Ledger", "ledger"]


@dataclasses.dataclass
class Ledger:
    """What was scanned and what was found, for the whole run and the running test."""

    counts: dict[str, int] = dataclasses.field(default_factory=dict)
    sizes: dict[str, int] = dataclasses.field(default_factory=dict)
    tests: int = 0
    #: ``(kind, "what in where")`` of the running test (kinds as ``canary.Hit.kind``).
    hits: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    #: Hits that failed a test, over the run.
    failed_hits: int = 0
    lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)
    services: weakref.WeakSet[Any] = dataclasses.field(default_factory=weakref.WeakSet)

    def scan(
        self, channel: str, where: Callable[[], str], text: str, *, tokens: bool = True
    ) -> None:
        """Scan ``text`` from ``channel``; record each hit with ``where()`` it was."""
        found = canary.scan(text, tokens=tokens)
        with self.lock:
            self.counts[channel] = self.counts.get(channel, 0) + 1
            self.sizes[channel] = self.sizes.get(channel, 0) + len(text)
            if found:
                place = where()
                self.hits.extend((hit.kind, f"{hit.description} in {place}") for hit in found)

    def take(self, *, tokens: bool = True) -> list[str]:
        """The running test's hits, cleared (``tokens=False``: the secrets only)."""
        with self.lock:
            hits, self.hits = self.hits, []
        return [text for kind, text in hits if tokens or kind == "secret"]


ledger = Ledger()


# -- logs ---------------------------------------------------------------------------------------
_handle = logging.Logger.handle  # restored at the end
_is_enabled_for = logging.Logger.isEnabledFor


def _record_text(record: logging.LogRecord) -> str:
    try:
        text = record.getMessage()
    except Exception:  # a malformed record: logging reports it; scan what it holds
        text = f"{record.msg!r} {record.args!r}"
    if record.exc_info and record.exc_info[1] is not None:
        text += "\n" + "".join(traceback.format_exception(record.exc_info[1]))
    if record.exc_text:
        text += "\n" + record.exc_text
    if record.stack_info:
        text += "\n" + record.stack_info
    return text


def _watched_handle(self: logging.Logger, record: logging.LogRecord) -> None:
    # Logging.handle of Python 3.11, with the scan between the logger's own filters (which may
    # scrub a record: chatauth.http's on httpx) and its handlers.
    if self.disabled or not self.filter(record):
        return
    ledger.scan(
        "log records",
        lambda: (
            f"a {record.levelname} log record of logger {record.name!r} "
            f"({record.pathname}:{record.lineno})"
        ),
        _record_text(record),
    )
    if _is_enabled_for(self, record.levelno):
        self.callHandlers(record)


def _always_enabled(self: logging.Logger, level: int) -> bool:
    return True


# -- response bodies ----------------------------------------------------------------------------
def _without_owner_token(body: bytes) -> str:
    """The body as text, less the ``token`` of a chat-session answer (the owner's own)."""
    text = body.decode("utf-8", "replace")
    if '"token"' not in text:
        return text
    with contextlib.suppress(ValueError):
        data = json.loads(text)
        if isinstance(data, dict) and {"provider", "uid", "token"} <= data.keys():
            return json.dumps({**data, "token": None})
    return text


def _scan_app_answer(channel: str, method: str, path: str, status: int, body: bytes) -> None:
    where = lambda: f"the body of a {status} answer to {method} {path}"  # noqa: E731
    ledger.scan(channel, where, _without_owner_token(body))


def _django_request(original: Callable[..., Any]) -> Callable[..., Any]:
    def request(self: Any, **request: Any) -> Any:
        response = original(self, **request)
        if not getattr(response, "streaming", False):
            _scan_app_answer(
                "Django test client bodies",
                request.get("REQUEST_METHOD", "GET"),
                request.get("PATH_INFO", "?"),
                response.status_code,
                response.content,
            )
        return response

    return request


def _django_arequest(original: Callable[..., Any]) -> Callable[..., Any]:
    async def request(self: Any, **request: Any) -> Any:
        response = await original(self, **request)
        if not getattr(response, "streaming", False):
            _scan_app_answer(
                "Django test client bodies",
                request.get("method", "GET"),
                request.get("path", "?"),
                response.status_code,
                response.content,
            )
        return response

    return request


def _werkzeug_open(original: Callable[..., Any]) -> Callable[..., Any]:
    def open(self: Any, *args: Any, **kwargs: Any) -> Any:
        response = original(self, *args, **kwargs)
        # A sized answer is buffered by its app; a streamed one (no length) is left unread.
        if response.headers.get("Content-Length") is not None:
            request = response.request
            _scan_app_answer(
                "Werkzeug test client bodies",
                request.method,
                request.path,
                response.status_code,
                response.get_data(),
            )
        return response

    return open


def _scan_httpx(response: httpx.Response) -> None:
    if not response.is_stream_consumed or not hasattr(response, "_content"):
        return
    where = lambda: (  # noqa: E731
        f"the body of a {response.status_code} answer to {response.request.method} "
        f"{response.request.url.path}"
    )
    text = response.content.decode("utf-8", "replace")
    ledger.scan("httpx bodies", where, text, tokens=response.status_code >= 400)


def _httpx_send(original: Callable[..., Any]) -> Callable[..., Any]:
    def send(self: httpx.Client, request: httpx.Request, **kwargs: Any) -> httpx.Response:
        response: httpx.Response = original(self, request, **kwargs)
        _scan_httpx(response)
        return response

    return send


def _httpx_asend(original: Callable[..., Any]) -> Callable[..., Any]:
    async def send(self: httpx.AsyncClient, request: httpx.Request, **kwargs: Any) -> Any:
        response: httpx.Response = await original(self, request, **kwargs)
        _scan_httpx(response)
        return response

    return send


# -- reprs, messages and command output --------------------------------------------------------
def _error_init(original: Callable[..., None]) -> Callable[..., None]:
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        with contextlib.suppress(AttributeError):  # a subclass still setting itself up
            ledger.scan(
                "error messages and reprs",
                lambda: f"a {type(self).__name__}'s message",
                f"{self}\n{self!r}",
            )

    return __init__


def _service_init(original: Callable[..., None]) -> Callable[..., None]:
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        ledger.services.add(self)

    return __init__


def _scan_services() -> None:
    for service in list(ledger.services):
        for label in ("", "provider", "store"):
            part = getattr(service, label) if label else service
            ledger.scan(
                "service, provider and store reprs",
                lambda label=label, part=part: (
                    f"the repr of the {label or 'service'} ({type(part).__name__})"
                ),
                f"{part!r}\n{part}",
            )
    ledger.services.clear()


def _output(channel: str, text: Any) -> None:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    if isinstance(text, str) and text:
        ledger.scan(channel, lambda: channel, text)


def _echo(original: Callable[..., Any]) -> Callable[..., Any]:
    def echo(message: Any = None, *args: Any, **kwargs: Any) -> Any:
        _output("click.echo output", message if isinstance(message, str | bytes) else None)
        return original(message, *args, **kwargs)

    return echo


def _wrapper_write(original: Callable[..., Any]) -> Callable[..., Any]:
    def write(self: Any, msg: str = "", *args: Any, **kwargs: Any) -> Any:
        _output("Django command output", msg)
        return original(self, msg, *args, **kwargs)

    return write


def _cli_main(original: Callable[..., int]) -> Callable[..., int]:
    def main(*args: Any, **kwargs: Any) -> int:
        try:
            return original(*args, **kwargs)
        finally:
            out = kwargs.get("out")
            if hasattr(out, "getvalue"):
                _output("chatauth CLI output", out.getvalue())

    return main


def _subprocess_run(original: Callable[..., Any]) -> Callable[..., Any]:
    def run(*args: Any, **kwargs: Any) -> Any:
        result = original(*args, **kwargs)
        _output("subprocess output", result.stdout)
        _output("subprocess output", result.stderr)
        return result

    return run


# -- installing ---------------------------------------------------------------------------------
def _patches() -> Iterator[tuple[Any, str, Callable[[Callable[..., Any]], Any]]]:
    """``(owner, attribute, wrap)`` for each watched call; frameworks only where installed."""
    from chatauth import cli
    from chatauth.errors import ChatAuthError
    from chatauth.service import ChatAuth

    yield httpx.Client, "send", _httpx_send
    yield httpx.AsyncClient, "send", _httpx_asend
    yield ChatAuthError, "__init__", _error_init
    yield ChatAuth, "__init__", _service_init
    yield cli, "main", _cli_main
    yield subprocess, "run", _subprocess_run
    with contextlib.suppress(ImportError):
        import werkzeug.test

        yield werkzeug.test.Client, "open", _werkzeug_open
    with contextlib.suppress(ImportError):
        import click

        yield click, "echo", _echo
    with contextlib.suppress(ImportError):
        import django.core.management.base
        import django.test.client

        yield django.test.client.Client, "request", _django_request
        yield django.test.client.AsyncClient, "request", _django_arequest
        yield django.core.management.base.OutputWrapper, "write", _wrapper_write


_undo: list[tuple[Any, str, Any]] = []


def pytest_configure(config: pytest.Config) -> None:
    logging.Logger.handle = _watched_handle  # type: ignore[method-assign]
    logging.Logger.isEnabledFor = _always_enabled  # type: ignore[method-assign]
    for owner, name, wrap in _patches():
        original = owner.__dict__[name]
        _undo.append((owner, name, original))
        setattr(owner, name, wrap(original))


def pytest_unconfigure(config: pytest.Config) -> None:
    for owner, name, original in reversed(_undo):
        setattr(owner, name, original)
    _undo.clear()
    logging.Logger.handle = _handle  # type: ignore[method-assign]
    logging.Logger.isEnabledFor = _is_enabled_for  # type: ignore[method-assign]


# -- failing the test that leaked ---------------------------------------------------------------
def _message(hits: list[str]) -> str:
    lines = [f"secret canary: {len(hits)} leak(s) of a secret or token (values not shown):"]
    lines += [f"  - {hit}" for hit in hits[:20]]
    if len(hits) > 20:
        lines.append(f"  ... and {len(hits) - 20} more")
    return "\n".join(lines)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Generator[None, None, None]:
    ledger.take()  # whatever came between tests belongs to no test
    ledger.tests += 1
    yield


#: Marks a test whose own code rightly puts issued tokens where the canary looks (a test of an
#: emulator's API calling it directly, token in the URL, as the provider's docs do): its
#: tokens are not hits; secrets still are.
ALLOWS_TOKENS = "canary_allows_tokens"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, Any, None]:
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    for _, section in report.sections:
        if "Captured stdout" in _ or "Captured stderr" in _:
            _output("captured stdout and stderr", section)
    if call.when == "teardown":
        _scan_services()
    if call.when in ("call", "teardown"):
        hits = ledger.take(tokens=item.get_closest_marker(ALLOWS_TOKENS) is None)
        if hits and report.outcome != "skipped":
            ledger.failed_hits += len(hits)
            report.outcome = "failed"
            report.longrepr = _message(hits)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not ledger.tests:
        return
    scanned = ", ".join(
        f"{ledger.counts[channel]} {channel} ({ledger.sizes[channel]:,} characters)"
        for channel in sorted(ledger.counts)
    )
    terminalreporter.write_line(
        f"secret canary: {ledger.tests} tests watched; scanned {scanned}; "
        f"{ledger.failed_hits} hit(s)"
    )
