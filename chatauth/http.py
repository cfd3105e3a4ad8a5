"""Flow drivers: run a provider's sans-I/O flow over httpx (DESIGN §3).

A provider operation is a *flow*, a generator that yields :class:`httpx.Request` objects,
receives an :class:`httpx.Response` for each and finally returns its result -- the shape of
httpx's own ``Auth.auth_flow``. :func:`run_flow` drives one with an :class:`httpx.Client`,
:func:`arun_flow` with an :class:`httpx.AsyncClient`. Both own the same policy:

* timeouts come from the client (:func:`default_timeout`);
* transport errors (connect errors, timeouts, resets), 429 and 5xx are retried with
  exponential backoff and jitter by `stamina <https://stamina.hynek.me>`_, waiting at least
  the provider's ``Retry-After`` when it sent one;
* a ``Retry-After`` longer than :attr:`RetryPolicy.max_retry_after` is not slept through in a
  request: the driver gives up at once;
* when retries run out, :class:`~chatauth.errors.ProviderUnavailableError` is raised with
  ``retry_after`` in seconds. The flow only ever sees final, non-retryable responses.
"""

from __future__ import annotations

import contextlib
import dataclasses
import email.utils
import logging
import threading
import urllib.parse
from collections.abc import Callable, Generator, Iterator
from datetime import datetime, timezone
from typing import TypeVar

import httpx
import stamina

from chatauth.errors import ProviderUnavailableError

__all__ = [
    "REDACT",
    "Flow",
    "RetryPolicy",
    "arun_flow",
    "default_timeout",
    "run_flow",
]

T = TypeVar("T")
Flow = Generator[httpx.Request, httpx.Response, T]

logger = logging.getLogger("chatauth.http")

#: ``httpx.Request`` extension naming secrets in the URL: ``extensions={REDACT: (token,)}``.
#: Some APIs put a token in the path (CometChat ``DELETE .../auth_tokens/{authToken}``), and
#: httpx logs every request URL at INFO: the driver scrubs those values from httpx's records.
REDACT = "chatauth.redact"


class _Redactor(logging.Filter):
    """A filter on the ``httpx`` logger replacing the secrets of requests in flight."""

    def __init__(self) -> None:
        super().__init__()
        self._mutex = threading.Lock()
        self._secrets: dict[str, int] = {}

    @contextlib.contextmanager
    def hiding(self, request: httpx.Request) -> Iterator[None]:
        secrets = [s for s in request.extensions.get(REDACT, ()) if s]
        if not secrets:
            yield
            return
        # Tokens in URLs are percent-encoded: hide both spellings.
        values = {v for s in secrets for v in (s, urllib.parse.quote(s, safe=""))}
        with self._mutex:
            for value in values:
                self._secrets[value] = self._secrets.get(value, 0) + 1
        try:
            yield
        finally:
            with self._mutex:
                for value in values:
                    self._secrets[value] -= 1
                    if not self._secrets[value]:
                        del self._secrets[value]

    def filter(self, record: logging.LogRecord) -> bool:
        if self._secrets and record.args:
            with self._mutex:
                secrets = list(self._secrets)
            args = record.args if isinstance(record.args, tuple) else (record.args,)
            scrubbed = []
            for arg in args:
                text = str(arg)
                if any(secret in text for secret in secrets):
                    for secret in secrets:
                        text = text.replace(secret, "<redacted>")
                    arg = text
                scrubbed.append(arg)
            record.args = tuple(scrubbed)
        return True


_redactor = _Redactor()
logging.getLogger("httpx").addFilter(_redactor)


def default_timeout(seconds: float = 5.0) -> httpx.Timeout:
    """The timeout chatauth's own clients use: ``seconds`` for each phase, 2 s to connect."""
    return httpx.Timeout(seconds, connect=min(seconds, 2.0))


@dataclasses.dataclass(frozen=True)
class RetryPolicy:
    """How hard the drivers try before giving up.

    Attributes:
        attempts: total tries per request (1 = no retry).
        timeout: total seconds spent on one request including waits.
        wait_initial, wait_max, wait_jitter: backoff shape in seconds (stamina's meaning).
        max_retry_after: the longest provider ``Retry-After`` (seconds) worth waiting inside a
            request; longer ones fail fast so the app's own client can come back later.
        default_retry_after: ``retry_after`` (seconds) reported when the provider gave none.
    """

    attempts: int = 3
    timeout: float = 15.0
    wait_initial: float = 0.2
    wait_max: float = 2.0
    wait_jitter: float = 0.5
    max_retry_after: float = 3.0
    default_retry_after: int = 5


class _Retryable(Exception):
    """A response worth retrying (429/5xx); carries it to the backoff hook."""

    def __init__(self, response: httpx.Response) -> None:
        super().__init__(response.status_code)
        self.response = response


def retry_after_seconds(response: httpx.Response) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or HTTP date), or Matrix's
    ``retry_after_ms`` body field; ``None`` when absent or unparsable."""
    header = response.headers.get("Retry-After")
    if header:
        header = header.strip()
        try:
            return max(0.0, float(header))
        except ValueError:
            pass
        try:
            when = email.utils.parsedate_to_datetime(header)
        except (TypeError, ValueError):
            when = None
        if when is not None:
            return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())
    try:
        body = response.json()
    except ValueError:
        return None
    if isinstance(body, dict) and isinstance(body.get("retry_after_ms"), int | float):
        return float(body["retry_after_ms"]) / 1000
    return None


def _is_retryable_status(status: int) -> bool:
    return status == 429 or status >= 500


def _backoff_hook(policy: RetryPolicy) -> Callable[[Exception], bool | float]:
    def hook(exc: Exception) -> bool | float:
        if isinstance(exc, httpx.TransportError):
            return True
        if isinstance(exc, _Retryable):
            wait = retry_after_seconds(exc.response)
            if wait is None:
                return True
            if wait > policy.max_retry_after:
                return False  # not worth blocking a request for: fail fast
            return wait
        return False

    return hook


def _unavailable(provider: str, policy: RetryPolicy, exc: Exception) -> ProviderUnavailableError:
    if isinstance(exc, _Retryable):
        status = exc.response.status_code
        wait = retry_after_seconds(exc.response)
        retry_after = round(wait) if wait is not None else policy.default_retry_after
        what = f"answered HTTP {status}"
    else:
        status = None
        retry_after = policy.default_retry_after
        what = f"could not be reached ({type(exc).__name__})"
    return ProviderUnavailableError(
        f"The {provider} service {what}; try again later.",
        provider=provider,
        retry_after=max(1, retry_after),
        status=status,
    )


def _send(
    client: httpx.Client, request: httpx.Request, provider: str, policy: RetryPolicy
) -> httpx.Response:
    try:
        for attempt in stamina.retry_context(
            on=_backoff_hook(policy),
            attempts=policy.attempts,
            timeout=policy.timeout,
            wait_initial=policy.wait_initial,
            wait_max=policy.wait_max,
            wait_jitter=policy.wait_jitter,
        ):
            with attempt, _redactor.hiding(request):
                response = client.send(request)
                if _is_retryable_status(response.status_code):
                    response.read()
                    raise _Retryable(response)
                return response
    except (httpx.TransportError, _Retryable) as exc:
        raise _unavailable(provider, policy, exc) from None
    raise AssertionError("unreachable")  # pragma: no cover


async def _asend(
    client: httpx.AsyncClient, request: httpx.Request, provider: str, policy: RetryPolicy
) -> httpx.Response:
    try:
        async for attempt in stamina.retry_context(
            on=_backoff_hook(policy),
            attempts=policy.attempts,
            timeout=policy.timeout,
            wait_initial=policy.wait_initial,
            wait_max=policy.wait_max,
            wait_jitter=policy.wait_jitter,
        ):
            with attempt, _redactor.hiding(request):
                response = await client.send(request)
                if _is_retryable_status(response.status_code):
                    await response.aread()
                    raise _Retryable(response)
                return response
    except (httpx.TransportError, _Retryable) as exc:
        raise _unavailable(provider, policy, exc) from None
    raise AssertionError("unreachable")  # pragma: no cover


def run_flow(
    flow: Flow[T], client: httpx.Client, *, provider: str, policy: RetryPolicy | None = None
) -> T:
    """Drive ``flow`` to completion with a sync client and return its result.

    Raises:
        ProviderUnavailableError: a request kept failing (transport error, 429, 5xx).
        Whatever the flow raises on a final response (``ProviderError`` and friends).
    """
    policy = policy or RetryPolicy()
    try:
        request = next(flow)
        while True:
            # The path is not logged: some APIs put the token in it (CometChat DELETE).
            logger.debug("%s %s %s", provider, request.method, request.url.host)
            response = _send(client, request, provider, policy)
            request = flow.send(response)
    except StopIteration as stop:
        result: T = stop.value
        return result


async def arun_flow(
    flow: Flow[T], client: httpx.AsyncClient, *, provider: str, policy: RetryPolicy | None = None
) -> T:
    """The async twin of :func:`run_flow`; never blocks the event loop."""
    policy = policy or RetryPolicy()
    try:
        request = next(flow)
        while True:
            # The path is not logged: some APIs put the token in it (CometChat DELETE).
            logger.debug("%s %s %s", provider, request.method, request.url.host)
            response = await _asend(client, request, provider, policy)
            request = flow.send(response)
    except StopIteration as stop:
        result: T = stop.value
        return result
