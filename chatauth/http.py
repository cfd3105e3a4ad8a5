"""Flow drivers: run a provider's sans-I/O flow over httpx (DESIGN §3).

A provider operation is a *flow*, a generator that yields :class:`httpx.Request` objects,
receives an :class:`httpx.Response` for each and finally returns its result -- the shape of
httpx's own ``Auth.auth_flow``. :func:`run_flow` drives one with an :class:`httpx.Client`,
:func:`arun_flow` with an :class:`httpx.AsyncClient`. Both own the same policy:

* one deadline per provider operation (:attr:`RetryPolicy.timeout` seconds): every request of
  the flow, every retry and backoff wait, and every body read fit in it, however slowly the
  provider trickles its answer. The sync driver caps each request's per-phase timeouts (from
  the client, :func:`default_timeout`) at what is left of the deadline and reads the body in
  chunks against it; the async driver also cancels the operation when the deadline passes
  (``anyio.fail_after``). Past the deadline,
  :class:`~chatauth.errors.ProviderUnavailableError` is raised;
* a flow that fails is told so, as httpx does with ``auth_flow``: the driver throws the error
  into the flow (``flow.throw``) at the request that failed, so a flow that already minted a
  credential can yield the requests that undo it (revoke that token) before the error goes up.
  Those undo requests get one attempt each within their own budget,
  :attr:`RetryPolicy.cleanup_timeout` seconds. The driver closes the flow in any case;
* transport errors (connect errors, timeouts, resets), 429 and 5xx are retried with
  exponential backoff and jitter by `stamina <https://stamina.hynek.me>`_, waiting at least
  the provider's ``Retry-After`` when it sent one;
* a ``Retry-After`` longer than :attr:`RetryPolicy.max_retry_after` is not slept through in a
  request: the driver gives up at once;
* when retries run out, :class:`~chatauth.errors.ProviderUnavailableError` is raised with
  ``retry_after`` in seconds. The flow only ever sees final, non-retryable responses;
* a body is read only up to :attr:`RetryPolicy.max_body` bytes, counted both as received and
  after content decoding (a compressed bomb is cut off too); a larger body is refused with
  :class:`~chatauth.errors.ProviderError` ``ERROR_RESPONSE_TOO_LARGE`` before anything parses
  it, and is not retried; so is a body whose ``Content-Encoding`` cannot be decoded
  (``ERROR_BAD_RESPONSE``). :func:`read_json` parses a body without ever raising.
"""

from __future__ import annotations

import contextlib
import dataclasses
import email.utils
import json
import logging
import math
import threading
import time
import urllib.parse
from collections.abc import AsyncIterator, Callable, Generator, Iterator
from datetime import datetime, timezone
from typing import Any, TypeVar

import anyio
import httpx
import stamina

from chatauth.errors import ProviderError, ProviderUnavailableError

__all__ = [
    "MAX_BODY",
    "REDACT",
    "Deadline",
    "Flow",
    "RetryPolicy",
    "arun_flow",
    "default_timeout",
    "read_json",
    "run_flow",
]

T = TypeVar("T")
Flow = Generator[httpx.Request, httpx.Response, T]

logger = logging.getLogger("chatauth.http")

#: ``httpx.Request`` extension naming secrets in the URL: ``extensions={REDACT: (token,)}``.
#: Some APIs put a token in the path (CometChat ``DELETE .../auth_tokens/{authToken}``), and
#: httpx logs every request URL at INFO: the driver scrubs those values from httpx's records.
REDACT = "chatauth.redact"
#: The largest provider answer read, in bytes (1 MiB): every documented answer chatauth
#: reads is a few hundred bytes, so a larger one is a fault, not data.
MAX_BODY = 1 << 20


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
        timeout: the deadline of one provider operation, in seconds: the whole flow (get user,
            create user, create token...) with every retry, backoff wait and body read. The
            service's issue lock is sized to outlive it (``ChatAuth.lock_ttl``).
        cleanup_timeout: seconds granted, after an operation failed, to the requests its flow
            makes to undo what it created (revoking a token it had minted); one attempt each.
        wait_initial, wait_max, wait_jitter: backoff shape in seconds (stamina's meaning).
        max_retry_after: the longest provider ``Retry-After`` (seconds) worth waiting inside a
            request; longer ones fail fast so the app's own client can come back later.
        default_retry_after: ``retry_after`` (seconds) reported when the provider gave none.
        max_body: the largest response body read, in bytes (raw and decoded alike).
    """

    attempts: int = 3
    timeout: float = 15.0
    cleanup_timeout: float = 5.0
    wait_initial: float = 0.2
    wait_max: float = 2.0
    wait_jitter: float = 0.5
    max_retry_after: float = 3.0
    default_retry_after: int = 5
    max_body: int = MAX_BODY


class Deadline:
    """The point in time (monotonic seconds) by which one provider operation must be over.

    Args:
        seconds: the budget from now.
        monotonic: the clock read (default :func:`time.monotonic`). The drivers wait on real
            sockets, so this is real time; tests inject a short budget, not a fake clock.
    """

    __slots__ = ("_monotonic", "at", "seconds")

    def __init__(self, seconds: float, *, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._monotonic = monotonic
        self.seconds = seconds
        self.at = monotonic() + seconds

    def remaining(self) -> float:
        """Seconds left (0 once passed)."""
        return max(0.0, self.at - self._monotonic())

    def expired(self) -> bool:
        return self._monotonic() >= self.at

    def __repr__(self) -> str:
        return f"<Deadline {self.seconds:g}s, {self.remaining():.3f}s left>"


class _OutOfTime(Exception):
    """The operation's deadline passed; never retried."""


class _BadBody(Exception):
    """The body cannot be read: its encoding lies (``Content-Encoding: gzip`` over plain
    bytes); never retried. ``status`` is the HTTP status of the answer, set once known."""

    status = 0
    code = "ERROR_BAD_RESPONSE"
    what = "a body that cannot be decoded"


class _TooLarge(_BadBody):
    """The body passed :attr:`RetryPolicy.max_body`."""

    code = "ERROR_RESPONSE_TOO_LARGE"
    what = "a body larger than chatauth reads"


class _DeadlineStream(httpx.SyncByteStream):
    """A response body read chunk by chunk against the deadline and the size cap: a provider
    that trickles its body (each read well within the read timeout) cannot keep the operation
    going, nor one that sends megabytes fill memory."""

    def __init__(self, inner: httpx.SyncByteStream, deadline: Deadline, cap: int) -> None:
        self._inner = inner
        self._deadline = deadline
        self._left = cap

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._inner:
            if self._deadline.expired():
                raise _OutOfTime()
            self._left -= len(chunk)
            if self._left < 0:
                raise _TooLarge()
            yield chunk

    def close(self) -> None:
        self._inner.close()


class _AsyncDeadlineStream(httpx.AsyncByteStream):
    """Async twin of :class:`_DeadlineStream` (the driver also cancels at the deadline)."""

    def __init__(self, inner: httpx.AsyncByteStream, deadline: Deadline, cap: int) -> None:
        self._inner = inner
        self._deadline = deadline
        self._left = cap

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._inner:
            if self._deadline.expired():
                raise _OutOfTime()
            self._left -= len(chunk)
            if self._left < 0:
                raise _TooLarge()
            yield chunk

    async def aclose(self) -> None:
        await self._inner.aclose()


def _bounded(request: httpx.Request, default: httpx.Timeout, deadline: Deadline) -> None:
    """Cap every phase timeout of ``request`` at what is left of the deadline."""
    left = deadline.remaining()
    if left <= 0:
        raise _OutOfTime()
    phases: dict[str, float | None] = dict(request.extensions.get("timeout") or default.as_dict())
    request.extensions["timeout"] = {
        phase: left if value is None else min(value, left) for phase, value in phases.items()
    }


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
    body = read_json(response)
    wait = body.get("retry_after_ms") if isinstance(body, dict) else None
    if isinstance(wait, int | float) and not isinstance(wait, bool) and math.isfinite(wait):
        return max(0.0, float(wait) / 1000)
    return None


def read_json(response: httpx.Response) -> Any:
    """The parsed JSON body of a read ``response``, or ``None`` when it is not JSON.

    Never raises: bad UTF-8, bad JSON, nesting deep enough to exhaust the parser's recursion
    and numbers Python cannot hold all give ``None``. The body is already bounded by
    :attr:`RetryPolicy.max_body`.
    """
    try:
        return json.loads(response.content)
    except (ValueError, RecursionError):
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
    if isinstance(exc, _OutOfTime | TimeoutError):
        return ProviderUnavailableError(
            f"The {provider} service did not answer in time; try again later.",
            provider=provider,
            retry_after=policy.default_retry_after,
        )
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


def _refuse_announced(response: httpx.Response, cap: int) -> None:
    """Refuse a body whose ``Content-Length`` already says it is too large, unread."""
    length = response.headers.get("Content-Length", "")
    if length.strip().isdigit() and int(length) > cap:
        raise _TooLarge()


def _keep(response: httpx.Response, chunks: Iterator[bytes], cap: int) -> None:
    """Read the decoded body into ``response``, counting the decoded bytes against ``cap``."""
    kept: list[bytes] = []
    left = cap
    for chunk in chunks:
        left -= len(chunk)
        if left < 0:
            raise _TooLarge()
        kept.append(chunk)
    # What httpx's own Response.read() does with the chunks; done here so the count comes
    # first.
    response._content = b"".join(kept)


async def _akeep(response: httpx.Response, chunks: AsyncIterator[bytes], cap: int) -> None:
    """Async twin of :func:`_keep`."""
    kept: list[bytes] = []
    left = cap
    async for chunk in chunks:
        left -= len(chunk)
        if left < 0:
            raise _TooLarge()
        kept.append(chunk)
    response._content = b"".join(kept)


def _unreadable(provider: str, policy: RetryPolicy, exc: _BadBody) -> ProviderError:
    return ProviderError(
        f"{provider} answered HTTP {exc.status} with {exc.what} "
        f"(at most {policy.max_body} bytes are read).",
        provider=provider,
        status=exc.status,
        code=exc.code,
    )


def _once(
    client: httpx.Client, request: httpx.Request, deadline: Deadline, cap: int = MAX_BODY
) -> httpx.Response:
    """One try: send, read the body (at most ``cap`` bytes) against the deadline, refuse a
    retryable status."""
    with _redactor.hiding(request):
        _bounded(request, client.timeout, deadline)
        response = client.send(request, stream=True)
        try:
            _refuse_announced(response, cap)
            response.stream = _DeadlineStream(response.stream, deadline, cap)  # type: ignore[arg-type]
            _keep(response, response.iter_bytes(), cap)
        except httpx.DecodingError:
            bad = _BadBody()
            bad.status = response.status_code
            raise bad from None
        except _BadBody as exc:
            exc.status = response.status_code
            raise
        finally:
            response.close()
    if _is_retryable_status(response.status_code):
        raise _Retryable(response)
    return response


async def _aonce(
    client: httpx.AsyncClient, request: httpx.Request, deadline: Deadline, cap: int = MAX_BODY
) -> httpx.Response:
    """Async twin of :func:`_once`."""
    with _redactor.hiding(request):
        _bounded(request, client.timeout, deadline)
        response = await client.send(request, stream=True)
        try:
            _refuse_announced(response, cap)
            response.stream = _AsyncDeadlineStream(response.stream, deadline, cap)  # type: ignore[arg-type]
            await _akeep(response, response.aiter_bytes(), cap)
        except httpx.DecodingError:
            bad = _BadBody()
            bad.status = response.status_code
            raise bad from None
        except _BadBody as exc:
            exc.status = response.status_code
            raise
        finally:
            await response.aclose()
    if _is_retryable_status(response.status_code):
        raise _Retryable(response)
    return response


def _send(
    client: httpx.Client,
    request: httpx.Request,
    provider: str,
    policy: RetryPolicy,
    deadline: Deadline,
    attempts: int,
) -> httpx.Response:
    try:
        if attempts == 1:
            # Outside stamina: its testing mode would retry even this.
            return _once(client, request, deadline, policy.max_body)
        for attempt in stamina.retry_context(
            on=_backoff_hook(policy),
            attempts=attempts,
            timeout=max(deadline.remaining(), 0.001),
            wait_initial=policy.wait_initial,
            wait_max=policy.wait_max,
            wait_jitter=policy.wait_jitter,
        ):
            with attempt:
                return _once(client, request, deadline, policy.max_body)
    except _BadBody as exc:
        raise _unreadable(provider, policy, exc) from None
    except (httpx.TransportError, _Retryable, _OutOfTime) as exc:
        if deadline.expired() and not isinstance(exc, _Retryable):
            exc = _OutOfTime()  # a read cut short by the capped timeout is the deadline too
        raise _unavailable(provider, policy, exc) from None
    raise AssertionError("unreachable")  # pragma: no cover


async def _asend(
    client: httpx.AsyncClient,
    request: httpx.Request,
    provider: str,
    policy: RetryPolicy,
    deadline: Deadline,
    attempts: int,
) -> httpx.Response:
    try:
        # The hard bound: whatever the provider does, the operation is cancelled at the
        # deadline (retries, backoff waits and a trickling body included).
        with anyio.fail_after(deadline.remaining()):
            if attempts == 1:
                return await _aonce(client, request, deadline, policy.max_body)  # see _send
            async for attempt in stamina.retry_context(
                on=_backoff_hook(policy),
                attempts=attempts,
                timeout=max(deadline.remaining(), 0.001),
                wait_initial=policy.wait_initial,
                wait_max=policy.wait_max,
                wait_jitter=policy.wait_jitter,
            ):
                with attempt:
                    return await _aonce(client, request, deadline, policy.max_body)
    except _BadBody as exc:
        raise _unreadable(provider, policy, exc) from None
    except (httpx.TransportError, _Retryable, _OutOfTime, TimeoutError) as exc:
        if deadline.expired() and not isinstance(exc, _Retryable):
            exc = _OutOfTime()
        raise _unavailable(provider, policy, exc) from None
    raise AssertionError("unreachable")  # pragma: no cover


def run_flow(
    flow: Flow[T],
    client: httpx.Client,
    *,
    provider: str,
    policy: RetryPolicy | None = None,
    deadline: Deadline | None = None,
) -> T:
    """Drive ``flow`` to completion with a sync client and return its result.

    The whole flow runs within one deadline (``deadline``, default
    :attr:`RetryPolicy.timeout` seconds from now). When a request fails for good, the error
    is thrown into the flow at that request (``flow.throw``): a flow that minted a credential
    may yield requests to revoke it, then re-raise. The flow is closed in any case.

    Raises:
        ProviderUnavailableError: a request kept failing (transport error, 429, 5xx), or the
            deadline passed.
        Whatever the flow raises on a final response (``ProviderError`` and friends).
    """
    policy = policy or RetryPolicy()
    deadline = deadline or Deadline(policy.timeout)
    attempts = policy.attempts
    try:
        request = next(flow)
        while True:
            # The path is not logged: some APIs put the token in it (CometChat DELETE).
            logger.debug("%s %s %s", provider, request.method, request.url.host)
            try:
                response = _send(client, request, provider, policy, deadline, attempts)
            except Exception as exc:
                # From here on the flow may only undo what it did: a fresh, short budget
                # (the operation's own may be spent) and no retries.
                deadline, attempts = Deadline(policy.cleanup_timeout), 1
                request = flow.throw(exc)
                continue
            request = flow.send(response)
    except StopIteration as stop:
        result: T = stop.value
        return result
    finally:
        flow.close()


async def arun_flow(
    flow: Flow[T],
    client: httpx.AsyncClient,
    *,
    provider: str,
    policy: RetryPolicy | None = None,
    deadline: Deadline | None = None,
) -> T:
    """The async twin of :func:`run_flow`; never blocks the event loop, and cancels the
    request in flight when the deadline passes."""
    policy = policy or RetryPolicy()
    deadline = deadline or Deadline(policy.timeout)
    attempts = policy.attempts
    try:
        request = next(flow)
        while True:
            # The path is not logged: some APIs put the token in it (CometChat DELETE).
            logger.debug("%s %s %s", provider, request.method, request.url.host)
            try:
                response = await _asend(client, request, provider, policy, deadline, attempts)
            except Exception as exc:
                deadline, attempts = Deadline(policy.cleanup_timeout), 1  # see run_flow
                request = flow.throw(exc)
                continue
            request = flow.send(response)
    except StopIteration as stop:
        result: T = stop.value
        return result
    finally:
        flow.close()
