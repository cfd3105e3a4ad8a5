"""The service's operations, written once: effects, and one driver per mode (DESIGN §3, §4).

Every operation of :class:`~chatauth.service.ChatAuth` (get a session, end one, sweep...) is
an *operation*: a generator that does no I/O itself. It yields an *effect* each time it needs
the outside world -- a store call, a provider flow, a lock held around a part of the
operation -- receives the effect's result (or has the effect's exception raised at the
``yield``), and finally returns its own result. That is the shape the provider flows already
have (:mod:`chatauth.http`), one level up.

:func:`drive` runs an operation with blocking calls; :func:`adrive` runs the same operation
on an event loop, never blocking it: store calls go to the store's ``a``-prefixed twins (which
leave the loop by the store's own rule, :meth:`~chatauth.stores.base.BaseStore._in_thread`),
provider flows to the async flow driver, file I/O to a worker thread. So the sync and async
forms of an operation cannot drift: there is one of it.

The effects:

* :class:`StoreCall` -- call one store method (``get``, ``pop``, ``add_pending``...);
* :class:`ProviderCall` -- drive one provider flow (``provider.issue(...)``,
  ``provider.revoke(...)``) through the service's HTTP clients, retries and deadline;
* :class:`Blocking` -- a small blocking call that is not the store's (the end journal's
  file appends);
* :class:`Locked` -- run a nested operation while holding the store's issue lock for a key
  (and, with ``local=True``, this process's lock for that key first);
* :class:`Shared` -- run a nested operation once for all the callers of a key in this process
  that arrive while it runs (single-flight, :mod:`chatauth.singleflight`): the others get the
  leader's result or exception.

An effect that fails raises its exception into the operation at its ``yield``; an exception
the operation lets through goes up to the caller. Operations never yield in a ``finally``
block: a cancelled task or a closed operation must not ask for more I/O.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from chatauth.tokens import SessionKey

if TYPE_CHECKING:
    # A type only: importing chatauth.http (httpx, stamina) here would load them with every
    # adapter (chatauth.binding -> chatauth.refresh -> this module).
    from chatauth.hits import HitCache
    from chatauth.http import Flow
    from chatauth.singleflight import AsyncKeyedLocks, KeyedLocks
    from chatauth.stores.base import BaseStore

__all__ = [
    "Blocking",
    "Effect",
    "Locked",
    "Op",
    "ProviderCall",
    "Runtime",
    "Shared",
    "StoreCall",
    "adrive",
    "drive",
]

T = TypeVar("T")


class StoreCall:
    """Call ``store.<method>(*args, **kwargs)``; the async driver awaits ``store.a<method>``.

    Args:
        method: the sync method's name, e.g. ``"get"`` (its async twin is ``"aget"``).
    """

    __slots__ = ("args", "kwargs", "method")

    def __init__(self, method: str, *args: Any, **kwargs: Any) -> None:
        self.method = method
        self.args = args
        self.kwargs = kwargs

    def __repr__(self) -> str:
        # The arguments hold tokens (bearer secrets): never shown.
        return f"<StoreCall {self.method}>"


class ProviderCall:
    """Drive one provider flow (:data:`chatauth.http.Flow`) and get the flow's result."""

    __slots__ = ("flow",)

    def __init__(self, flow: Flow[Any]) -> None:
        self.flow = flow

    def __repr__(self) -> str:
        return "<ProviderCall>"


class Blocking:
    """Call ``func(*args, **kwargs)``, a short blocking call that is not the store's (a file
    append with ``fsync``); the async driver runs it in a worker thread."""

    __slots__ = ("args", "func", "kwargs")

    def __init__(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        self.func = func
        self.args = args
        self.kwargs = kwargs

    def __repr__(self) -> str:
        return f"<Blocking {getattr(self.func, '__qualname__', self.func)!r}>"


class Locked:
    """Run the operation ``op`` holding the store's issue lock for ``key`` (for at most the
    service's ``lock_ttl`` seconds; waiting ``lock_ttl + 5`` seconds for it at most). With
    ``local=True`` this process's lock for the key is taken first, so the threads or tasks of
    one process queue here rather than on the store."""

    __slots__ = ("key", "local", "op")

    def __init__(self, key: SessionKey, op: Op[Any], *, local: bool = False) -> None:
        self.key = key
        self.op = op
        self.local = local

    def __repr__(self) -> str:
        return f"<Locked {self.key!r} local={self.local}>"


class Shared:
    """Run ``start()``'s operation once for all the callers of ``key`` in this process that
    arrive while it runs; they get its result (or its exception) without running it."""

    __slots__ = ("key", "start")

    def __init__(self, key: SessionKey, start: Callable[[], Op[Any]]) -> None:
        self.key = key
        self.start = start

    def __repr__(self) -> str:
        return f"<Shared {self.key!r}>"


#: What an operation may yield.
Effect = StoreCall | ProviderCall | Blocking | Locked | Shared
#: An operation returning ``T``: yields effects, is sent each effect's result.
Op = Generator[Effect, Any, T]


class Runtime(Protocol):
    """What the drivers need from the service (:class:`~chatauth.service.ChatAuth` is one)."""

    store: BaseStore
    lock_ttl: float
    _locks: KeyedLocks
    _hits: HitCache

    def _run(self, flow: Flow[Any]) -> Any: ...

    async def _arun(self, flow: Flow[Any]) -> Any: ...

    def _async_locks(self) -> AsyncKeyedLocks: ...


#: The store methods that change stored tokens: this process's copies of them go first
#: (:mod:`chatauth.hits`).
_CHANGES = frozenset({"set", "pop", "pop_user", "sweep"})


def _forget(call: StoreCall, rt: Runtime) -> None:
    """Drop the sessions ``call`` may change from the process's cache, before the store is
    written: a read racing with the change cannot keep the old session after it."""
    if call.method in _CHANGES:
        key = call.args[0] if call.args else None
        if isinstance(key, SessionKey):
            rt._hits.drop(key)
        else:
            rt._hits.clear()


def _do(effect: Effect, rt: Runtime) -> Any:
    """Carry out one effect with blocking calls."""
    if isinstance(effect, StoreCall):
        _forget(effect, rt)
        return getattr(rt.store, effect.method)(*effect.args, **effect.kwargs)
    if isinstance(effect, ProviderCall):
        return rt._run(effect.flow)
    if isinstance(effect, Blocking):
        return effect.func(*effect.args, **effect.kwargs)
    if isinstance(effect, Locked):
        local = rt._locks.hold(effect.key.digest) if effect.local else contextlib.nullcontext()
        with local, rt.store.lock(effect.key, ttl=rt.lock_ttl, wait=rt.lock_ttl + 5):
            return drive(effect.op, rt)
    if isinstance(effect, Shared):
        start = effect.start
        return rt._locks.share(effect.key.digest, lambda: drive(start(), rt))
    raise TypeError(f"not an effect: {effect!r}")  # pragma: no cover - a bug in an operation


async def _ado(effect: Effect, rt: Runtime) -> Any:
    """Carry out one effect on the event loop, never blocking it."""
    if isinstance(effect, StoreCall):
        _forget(effect, rt)
        return await getattr(rt.store, "a" + effect.method)(*effect.args, **effect.kwargs)
    if isinstance(effect, ProviderCall):
        return await rt._arun(effect.flow)
    if isinstance(effect, Blocking):
        return await asyncio.to_thread(effect.func, *effect.args, **effect.kwargs)
    if isinstance(effect, Locked):
        async with contextlib.AsyncExitStack() as held:
            if effect.local:
                await held.enter_async_context(rt._async_locks().hold(effect.key.digest))
            await held.enter_async_context(
                rt.store.alock(effect.key, ttl=rt.lock_ttl, wait=rt.lock_ttl + 5)
            )
            return await adrive(effect.op, rt)
    if isinstance(effect, Shared):
        start = effect.start
        return await rt._async_locks().share(effect.key.digest, lambda: adrive(start(), rt))
    raise TypeError(f"not an effect: {effect!r}")  # pragma: no cover - a bug in an operation


def drive(op: Op[T], rt: Runtime) -> T:
    """Run the operation ``op`` to its end with blocking calls and return its result.

    Raises:
        Whatever the operation raises (an effect's exception it does not handle included).
    """
    try:
        effect = next(op)
        while True:
            try:
                result = _do(effect, rt)
            except BaseException as exc:
                effect = op.throw(exc)
            else:
                effect = op.send(result)
    except StopIteration as stop:
        value: T = stop.value
        return value
    finally:
        op.close()


async def adrive(op: Op[T], rt: Runtime) -> T:
    """The async twin of :func:`drive`: the same operation, awaited on the event loop."""
    try:
        effect = next(op)
        while True:
            try:
                result = await _ado(effect, rt)
            except BaseException as exc:
                effect = op.throw(exc)
            else:
                effect = op.send(result)
    except StopIteration as stop:
        value: T = stop.value
        return value
    finally:
        op.close()
