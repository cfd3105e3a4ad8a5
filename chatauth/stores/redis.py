"""The many-machines store: tokens, issue locks and pending revocations in Redis.

Every worker process of every machine shares one Redis, so one token is issued per
(provider, uid, app session) however many workers race for it (DESIGN §4). Built on redis-py
(https://redis.readthedocs.io/): the blocking client for sync code, ``redis.asyncio`` for
async code (one client per event loop, since a connection belongs to the loop that opened it).

Key layout (``chatauth`` is the default prefix; ``U`` is :attr:`SessionKey.user_digest` and
``D`` is :attr:`SessionKey.digest`, both sha256 hex, so no UID, app session id or token value
ever appears in a key name)::

    chatauth:{U}:tok:D     the token payload (JSON, or Fernet when a key is configured),
                           expiring with the token
    chatauth:{U}:sessions  set of the D's of one user, for pop_user (end every session)
    chatauth:{U}:lock:D    the issue lock: SET NX PX with a random owner
    chatauth:pending       a stream of revocations that failed and wait for revoke-pending

The ``{U}`` hash tag puts every key of one user in one Redis Cluster slot, so the Lua scripts
that touch a token and its user's set stay single-slot; the pending list is a single key.

Expiry: a token key lives until the token's ``expires_at``. A token the provider never expires
(CometChat, Matrix JWT login) is kept ``retention`` (default 7 days) past its ``refresh_at``,
so that the request that replaces it can still revoke it; after that Redis forgets it.

The issue lock is ``SET key owner NX PX ttl``; releasing it is a compare-and-delete in Lua,
so a worker whose lock expired cannot delete the next holder's (the pattern in the Redis
``SET`` documentation). A crashed holder's lock expires after ``ttl``.

Any Redis failure (refused connection, timeout, OOM, a replica that went read-only) raises
:class:`~chatauth.errors.StoreUnavailableError`, which token endpoints answer with 503 and
``Retry-After``; no redis-py exception escapes.
"""

from __future__ import annotations

import asyncio
import contextlib
import urllib.parse
import weakref
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

from chatauth.clock import Clock
from chatauth.errors import ConfigurationError, StoreUnavailableError
from chatauth.stores.base import BaseStore, PendingRevocation, TokenCipher
from chatauth.tokens import ChatToken, SessionKey

try:
    import redis
    import redis.asyncio
    from redis.asyncio.retry import Retry as AsyncRetry
    from redis.backoff import ExponentialWithJitterBackoff
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import RedisError
    from redis.exceptions import TimeoutError as RedisTimeoutError
    from redis.retry import Retry
except ImportError as exc:  # pragma: no cover - depends on installed extras
    raise ImportError(
        "RedisStore needs redis-py: pip install 'chatauth-middleware[redis]'"
    ) from exc

__all__ = ["RedisStore"]

DEFAULT_PREFIX = "chatauth"
DEFAULT_RETENTION = timedelta(days=7)

#: Client defaults chosen for a token endpoint: fail fast (a 503 the browser retries beats a
#: request hanging on a dead Redis), but retry once or twice so that a pooled connection broken
#: by a Redis restart reconnects instead of failing the request. The pool blocks: a burst of
#: requests waits up to ``timeout`` seconds for one of ``max_connections`` connections (per
#: process and event loop) instead of failing with "Too many connections". URL query options
#: (``?max_connections=100&timeout=2&socket_timeout=1``) win.
CLIENT_DEFAULTS: dict[str, Any] = {
    "socket_connect_timeout": 2.0,
    "socket_timeout": 5.0,
    "health_check_interval": 30,
    "max_connections": 50,
    "timeout": 5.0,
}


def _retry() -> Retry:
    return Retry(ExponentialWithJitterBackoff(base=0.01, cap=0.1), retries=2)


def _aretry() -> AsyncRetry:
    return AsyncRetry(ExponentialWithJitterBackoff(base=0.01, cap=0.1), retries=2)


# KEYS: token, user set. ARGV: payload, ttl in ms, digest.
# The user set lives as long as its longest-lived token; a member whose token key has expired
# is harmless (pop_user skips it).
SET_TOKEN = """
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('SADD', KEYS[2], ARGV[3])
if redis.call('PTTL', KEYS[2]) < tonumber(ARGV[2]) then
  redis.call('PEXPIRE', KEYS[2], ARGV[2])
end
return 1
"""

# KEYS: token, user set. ARGV: digest. Returns the payload or nil.
POP_TOKEN = """
local value = redis.call('GET', KEYS[1])
redis.call('DEL', KEYS[1])
redis.call('SREM', KEYS[2], ARGV[1])
return value
"""

# KEYS: user set, token 1..n. ARGV: digest 1..n. Returns the payloads that existed.
POP_USER = """
local out = {}
for i = 2, #KEYS do
  local value = redis.call('GET', KEYS[i])
  if value then
    out[#out + 1] = value
    redis.call('DEL', KEYS[i])
  end
  redis.call('SREM', KEYS[1], ARGV[i - 1])
end
return out
"""

# KEYS: lock. ARGV: owner. Deletes the lock only if this owner still holds it.
UNLOCK = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""

# KEYS: pending stream. ARGV: entry id, payload, attempts, error code, created (epoch s).
# The entry goes to the back of the queue, so one revocation that keeps failing cannot starve
# the others; if another drainer removed it meanwhile, nothing is re-added.
RETRY_PENDING = """
if redis.call('XDEL', KEYS[1], ARGV[1]) == 1 then
  return redis.call('XADD', KEYS[1], '*', 'token', ARGV[2], 'attempts', ARGV[3],
                    'error', ARGV[4], 'created', ARGV[5])
end
return false
"""

# KEYS: token, user set. ARGV: the payload read, digest. Deletes the token only if it still
# holds that payload (the sweep decided on it; a re-issued token is left alone).
POP_IF_SAME = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  redis.call('SREM', KEYS[2], ARGV[2])
  return 1
end
return 0
"""

SCRIPTS = {
    "pop_if_same": POP_IF_SAME,
    "set_token": SET_TOKEN,
    "pop_token": POP_TOKEN,
    "pop_user": POP_USER,
    "unlock": UNLOCK,
    "retry_pending": RETRY_PENDING,
}


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _field(fields: Mapping[Any, Any], name: str) -> Any:
    return fields.get(name.encode(), fields.get(name))


class RedisStore(BaseStore):
    """Tokens, issue locks and pending revocations in Redis, shared by every worker.

    Build it with :meth:`from_url` (what the ``STORE`` setting does), or pass clients you
    configured yourself.

    Args:
        client: a sync ``redis.Redis`` (``decode_responses`` must be off: payloads are bytes).
        async_client_factory: returns a new ``redis.asyncio.Redis`` for the running event loop;
            without one, the async methods run the sync client in a worker thread.
        cipher: optional :class:`~chatauth.stores.base.TokenCipher` (Fernet) for payloads.
        prefix: first part of every key name (default ``"chatauth"``); give each app sharing
            one Redis database its own.
        retention: how long a token without ``expires_at`` is kept after its ``refresh_at``
            (seconds or ``timedelta``; default 7 days).
        clock: the :class:`~chatauth.clock.Clock` key lifetimes are computed from (a token
            key's ``PX`` is its expiry minus this clock's now), lock waits are timed by and
            queued revocations are dated with; default the system clock. Redis itself
            expires keys and locks by the server's own clock.
    """

    name = "redis"

    def __init__(
        self,
        client: redis.Redis,
        *,
        async_client_factory: Callable[[], redis.asyncio.Redis] | None = None,
        cipher: TokenCipher | None = None,
        prefix: str = DEFAULT_PREFIX,
        retention: float | timedelta = DEFAULT_RETENTION,
        clock: Clock | None = None,
    ) -> None:
        super().__init__(cipher=cipher, clock=clock)
        self.client = client
        self.prefix = prefix
        self.retention = (
            retention if isinstance(retention, timedelta) else timedelta(seconds=retention)
        )
        self._async_client_factory = async_client_factory
        self._async: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, tuple[redis.asyncio.Redis, dict[str, Any]]
        ] = weakref.WeakKeyDictionary()
        self._scripts = {name: client.register_script(lua) for name, lua in SCRIPTS.items()}
        self._where = ""

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        cipher: TokenCipher | None = None,
        prefix: str | None = None,
        retention: float | timedelta = DEFAULT_RETENTION,
        clock: Clock | None = None,
        **client_options: Any,
    ) -> RedisStore:
        """A store for ``redis://``, ``rediss://`` (TLS) or ``unix://`` URLs.

        The URL is redis-py's (``redis://[[user]:password@]host[:port][/db]``,
        ``unix:///run/redis.sock?db=0``, query options such as ``socket_timeout=1``). One extra
        query option is chatauth's own: ``key_prefix=myapp`` sets ``prefix``.

        Args:
            url: the Redis URL; its password never appears in errors or ``repr``.
            cipher: optional payload cipher (``STORE_ENCRYPTION_KEY``).
            prefix: key prefix; overrides ``key_prefix`` in the URL.
            retention, clock: see the class.
            client_options: extra keyword arguments for both redis-py clients.

        Raises:
            ConfigurationError: the URL is malformed.
        """
        parts = urllib.parse.urlsplit(url)
        query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
        url_prefix = next((v for k, v in query if k == "key_prefix"), None)
        rest = [(k, v) for k, v in query if k != "key_prefix"]
        # Rebuilt by hand: urlunsplit would turn unix:///path into unix:/path.
        clean_url = f"{parts.scheme}://{parts.netloc}{parts.path}"
        if rest:
            clean_url += "?" + urllib.parse.urlencode(rest)
        options = {**CLIENT_DEFAULTS, **client_options}
        try:
            pool = redis.BlockingConnectionPool.from_url(
                clean_url, **{"retry": _retry(), **options}
            )
        except ValueError as exc:
            raise ConfigurationError(f"Invalid Redis STORE URL: {exc}", setting="STORE") from None
        client = redis.Redis.from_pool(pool)

        def async_client() -> redis.asyncio.Redis:
            apool = redis.asyncio.BlockingConnectionPool.from_url(
                clean_url, **{"retry": _aretry(), **options}
            )
            return redis.asyncio.Redis.from_pool(apool)

        store = cls(
            client,
            async_client_factory=async_client,
            cipher=cipher,
            prefix=prefix or url_prefix or DEFAULT_PREFIX,
            retention=retention,
            clock=clock,
        )
        host = parts.hostname or parts.path or "?"
        port = f":{parts.port}" if parts.port else ""
        store._where = f"{parts.scheme}://{host}{port}"
        return store

    def __repr__(self) -> str:
        return f"<RedisStore {self._where!r} prefix={self.prefix!r}>"

    # -- key names -------------------------------------------------------------------------
    def _user(self, user_digest: str) -> str:
        return f"{self.prefix}:{{{user_digest}}}"

    def token_key(self, key: SessionKey) -> str:
        """The Redis key of one token: ``<prefix>:{<user digest>}:tok:<digest>``."""
        return f"{self._user(key.user_digest)}:tok:{key.digest}"

    def sessions_key(self, user_digest: str) -> str:
        """The set of one user's token digests: ``<prefix>:{<user digest>}:sessions``."""
        return f"{self._user(user_digest)}:sessions"

    def lock_key(self, key: SessionKey) -> str:
        """The issue lock of one key: ``<prefix>:{<user digest>}:lock:<digest>``."""
        return f"{self._user(key.user_digest)}:lock:{key.digest}"

    def served_key(self, provider: str) -> str:
        """The sweep's index of when each token was last served: a sorted set
        ``<prefix>:served:<provider>``, member a token's key name, score Unix seconds."""
        return f"{self.prefix}:served:{provider}"

    def usable_key(self, provider: str) -> str:
        """The sweep's index of when chatauth stops serving each token (its
        ``usable_until``): a sorted set ``<prefix>:usable:<provider>``, scores Unix seconds."""
        return f"{self.prefix}:usable:{provider}"

    def _index(self, pipe: Any, key: SessionKey, token: ChatToken, served: float) -> None:
        # Two single-key commands beside the token's own slot (cluster-safe, not atomic with
        # it): an entry whose token is gone is dropped by the next sweep.
        name = self.token_key(key)
        pipe.zadd(self.served_key(key.provider), {name: served})
        until = token.usable_until()
        if until is not None:
            pipe.zadd(self.usable_key(key.provider), {name: until.timestamp()})
        else:
            pipe.zrem(self.usable_key(key.provider), name)

    def _unindex(self, pipe: Any, provider: str, names: list[str]) -> None:
        if names:
            pipe.zrem(self.served_key(provider), *names)
            pipe.zrem(self.usable_key(provider), *names)

    @property
    def pending_key(self) -> str:
        """The stream of queued revocations: ``<prefix>:pending``."""
        return f"{self.prefix}:pending"

    def _ttl_ms(self, token: ChatToken) -> int:
        now = self.clock.now()
        if token.expires_at is not None:
            until = token.expires_at
        else:
            until = (token.refresh_at or now) + self.retention
        # PX must be positive: a token already past its expiry lives one millisecond.
        return max(1, int((until - now).total_seconds() * 1000))

    # -- errors ------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _guard(self) -> Iterator[None]:
        try:
            yield
        except RedisError as exc:
            raise self._unavailable(exc) from None

    def _unavailable(self, exc: RedisError) -> StoreUnavailableError:
        if isinstance(exc, RedisConnectionError | RedisTimeoutError):
            detail = f"{type(exc).__name__}: {exc}"
        else:
            # Server error replies can echo command arguments (payloads); keep only the code.
            detail = f"{type(exc).__name__}: {str(exc).split(' ', 1)[0]}"
        return StoreUnavailableError(
            f"The Redis token store{' at ' + self._where if self._where else ''} failed"
            f" ({detail[:200]}).",
            provider=self.name,
            retry_after=1,
        )

    # -- tokens ----------------------------------------------------------------------------
    def _loaded(self, data: bytes | None, served: float | None) -> ChatToken | None:
        if data is None:
            return None
        if served is None:
            return self.load(data)
        return self.load(data, served_at=datetime.fromtimestamp(served, timezone.utc))

    def get(self, key: SessionKey) -> ChatToken | None:
        name = self.token_key(key)
        with self._guard():
            # One round trip for the token and its served time (no transaction: two slots).
            pipe = self.client.pipeline(transaction=False)
            pipe.get(name)
            pipe.zscore(self.served_key(key.provider), name)
            data, served = pipe.execute()
        return self._loaded(data, served)

    def set(self, key: SessionKey, token: ChatToken) -> None:
        payload = self.dump(token)
        with self._guard():
            self._scripts["set_token"](
                keys=[self.token_key(key), self.sessions_key(key.user_digest)],
                args=[payload, self._ttl_ms(token), key.digest],
            )
            pipe = self.client.pipeline(transaction=False)
            self._index(pipe, key, token, self.clock.time())
            pipe.execute()

    def pop(self, key: SessionKey) -> ChatToken | None:
        with self._guard():
            data = self._scripts["pop_token"](
                keys=[self.token_key(key), self.sessions_key(key.user_digest)], args=[key.digest]
            )
            pipe = self.client.pipeline(transaction=False)
            self._unindex(pipe, key.provider, [self.token_key(key)])
            pipe.execute()
        return self.load(data) if data is not None else None

    def touch(self, key: SessionKey, served_at: datetime) -> None:
        with self._guard():
            # XX: only a token still indexed; one popped meanwhile is not brought back.
            self.client.zadd(
                self.served_key(key.provider),
                {self.token_key(key): served_at.timestamp()},
                xx=True,
            )

    def sweep(
        self, provider: str, *, now: datetime, idle_before: datetime, limit: int = 1000
    ) -> list[ChatToken]:
        served_key, usable_key = self.served_key(provider), self.usable_key(provider)
        swept: list[ChatToken] = []
        with self._guard():
            names = list(
                dict.fromkeys(
                    _text(n)
                    for n in [
                        *self.client.zrangebyscore(
                            usable_key, "-inf", now.timestamp(), start=0, num=limit
                        ),
                        *self.client.zrangebyscore(
                            served_key, "-inf", f"({idle_before.timestamp()}", start=0, num=limit
                        ),
                    ]
                )
            )
            for name in names:
                if len(swept) >= limit:
                    break
                data = self.client.get(name)
                if data is None:  # gone already (popped, or the key expired): drop the entry
                    self._drop_entry(provider, name)
                    continue
                token = self.load(data)
                until = token.usable_until()
                served = self.client.zscore(served_key, name)
                if not (
                    (until is not None and until <= now)
                    or (served is not None and served < idle_before.timestamp())
                ):
                    continue  # re-issued or served since the index was read
                user_key, digest = self._parts(name)
                if self._scripts["pop_if_same"](
                    keys=[name, self.sessions_key(user_key)], args=[data, digest]
                ):
                    swept.append(token)
                    self._drop_entry(provider, name)
        return swept

    def _parts(self, name: str) -> tuple[str, str]:
        """(user digest, session digest) of a token key name ``<prefix>:{<user>}:tok:<d>``."""
        user = name[name.index("{") + 1 : name.index("}")]
        return user, name.rsplit(":", 1)[1]

    def _drop_entry(self, provider: str, name: str) -> None:
        pipe = self.client.pipeline(transaction=False)
        self._unindex(pipe, provider, [name])
        pipe.exists(name)
        *_, exists = pipe.execute()
        if exists:
            # Stored again between our pop and this removal (a re-issue): index it again.
            data = self.client.get(name)
            if data is not None:
                token = self.load(data)
                pipe = self.client.pipeline(transaction=False)
                pipe.zadd(self.served_key(provider), {name: self.clock.time()})
                until = token.usable_until()
                if until is not None:
                    pipe.zadd(self.usable_key(provider), {name: until.timestamp()})
                pipe.execute()

    def _pop_user_args(self, user_digest: str, members: Any) -> tuple[list[str], list[str]]:
        digests = sorted(_text(m) for m in members)
        keys = [self.sessions_key(user_digest)]
        keys += [f"{self._user(user_digest)}:tok:{d}" for d in digests]
        return keys, digests

    def pop_user(self, provider: str, uid: str) -> list[ChatToken]:
        user_digest = SessionKey(provider, uid).user_digest
        payloads: list[bytes] = []
        with self._guard():
            # Two steps (read the set, then pop what it named) so the script declares every key
            # it touches; repeat in case a session was added between them.
            for _ in range(10):
                members = self.client.smembers(self.sessions_key(user_digest))
                if not members:
                    break
                keys, digests = self._pop_user_args(user_digest, members)
                payloads += self._scripts["pop_user"](keys=keys, args=digests)
                pipe = self.client.pipeline(transaction=False)
                self._unindex(pipe, provider, keys[1:])
                pipe.execute()
        return [self.load(p) for p in payloads]

    def sessions(self, provider: str | None = None, uid: str | None = None) -> list[ChatToken]:
        with self._guard():
            if provider is not None and uid is not None:
                user_digest = SessionKey(provider, uid).user_digest
                members = self.client.smembers(self.sessions_key(user_digest))
                keys = [f"{self._user(user_digest)}:tok:{_text(m)}" for m in sorted(members)]
            else:
                keys = list(self.client.scan_iter(match=f"{self.prefix}:{{*}}:tok:*", count=500))
            values = [self.client.get(k) for k in keys]
        tokens = [self.load(v) for v in values if v is not None]
        return sorted(
            (
                t
                for t in tokens
                if (provider is None or t.provider == provider) and (uid is None or t.uid == uid)
            ),
            key=lambda t: t.issued_at,
        )

    def session_keys(self, provider: str) -> list[SessionKey]:
        """From the sweep's index of ``provider`` (every stored token is in it); the UID, which
        a key name does not hold, is read from each token."""
        keys: list[SessionKey] = []
        with self._guard():
            members = [*self.client.zrangebyscore(self.served_key(provider), "-inf", "+inf")]
            for name in map(_text, members):
                data = self.client.get(name)
                if data is not None:  # else popped or expired since the index was read
                    keys.append(
                        SessionKey.from_digest(provider, self.load(data).uid, self._parts(name)[1])
                    )
        return keys

    # -- the issue lock ----------------------------------------------------------------------
    def _try_lock(self, key: SessionKey, owner: str, ttl: float) -> bool:
        with self._guard():
            return bool(self.client.set(self.lock_key(key), owner, nx=True, px=int(ttl * 1000)))

    def _unlock(self, key: SessionKey, owner: str) -> None:
        with self._guard():
            self._scripts["unlock"](keys=[self.lock_key(key)], args=[owner])

    # -- pending revocations -------------------------------------------------------------
    def _entry(self, entry_id: Any, fields: Mapping[Any, Any]) -> PendingRevocation:
        return PendingRevocation(
            id=_text(entry_id),
            token=self.load(_field(fields, "token")),
            attempts=int(_field(fields, "attempts")),
            last_error=_text(_field(fields, "error")),
            created_at=datetime.fromtimestamp(float(_field(fields, "created")), timezone.utc),
        )

    def add_pending(self, token: ChatToken, error_code: str) -> None:
        fields = {
            "token": self.dump(token),
            "attempts": 1,
            "error": error_code,
            "created": repr(self.clock.time()),
        }
        with self._guard():
            self.client.xadd(self.pending_key, fields)  # type: ignore[arg-type]

    def pending(self, limit: int = 100) -> list[PendingRevocation]:
        with self._guard():
            rows = self.client.xrange(self.pending_key, count=limit)
        return [self._entry(entry_id, fields or {}) for entry_id, fields in rows or []]

    def remove_pending(self, entry: PendingRevocation) -> None:
        with self._guard():
            self.client.xdel(self.pending_key, entry.id)

    def _retry_args(self, entry: PendingRevocation, error_code: str) -> list[Any]:
        return [
            entry.id,
            self.dump(entry.token),
            entry.attempts + 1,
            error_code,
            repr(entry.created_at.timestamp()),
        ]

    def retry_failed(self, entry: PendingRevocation, error_code: str) -> None:
        with self._guard():
            self._scripts["retry_pending"](
                keys=[self.pending_key], args=self._retry_args(entry, error_code)
            )

    def count_pending(self) -> int:
        with self._guard():
            return int(self.client.xlen(self.pending_key))

    def ping(self) -> bool:
        """``True`` when Redis answers ``PING``.

        Raises:
            StoreUnavailableError: it does not.
        """
        with self._guard():
            return bool(self.client.ping())

    def close(self) -> None:
        """Close the sync client's connections. Async clients are closed by :meth:`aclose`
        on their own event loop."""
        self.client.close()

    # -- async twins, native -------------------------------------------------------------
    def _aclient(self) -> tuple[redis.asyncio.Redis, dict[str, Any]]:
        loop = asyncio.get_running_loop()
        entry = self._async.get(loop)
        if entry is None:
            # A client's connections reference their loop, so the weak key alone would never
            # let a finished loop go (asgiref runs one per call in sync Django): drop them.
            for finished in [old for old in self._async if old.is_closed()]:
                del self._async[finished]
            assert self._async_client_factory is not None
            aclient = self._async_client_factory()
            scripts = {name: aclient.register_script(lua) for name, lua in SCRIPTS.items()}
            entry = self._async[loop] = (aclient, scripts)
        return entry

    async def aget(self, key: SessionKey) -> ChatToken | None:
        if self._async_client_factory is None:
            return await super().aget(key)
        client, _ = self._aclient()
        name = self.token_key(key)
        with self._guard():
            pipe = client.pipeline(transaction=False)
            pipe.get(name)
            pipe.zscore(self.served_key(key.provider), name)
            data, served = await pipe.execute()
        return self._loaded(data, served)

    async def aset(self, key: SessionKey, token: ChatToken) -> None:
        if self._async_client_factory is None:
            return await super().aset(key, token)
        client, scripts = self._aclient()
        payload = self.dump(token)
        with self._guard():
            await scripts["set_token"](
                keys=[self.token_key(key), self.sessions_key(key.user_digest)],
                args=[payload, self._ttl_ms(token), key.digest],
            )
            pipe = client.pipeline(transaction=False)
            self._index(pipe, key, token, self.clock.time())
            await pipe.execute()
        return None

    async def apop(self, key: SessionKey) -> ChatToken | None:
        if self._async_client_factory is None:
            return await super().apop(key)
        client, scripts = self._aclient()
        with self._guard():
            data = await scripts["pop_token"](
                keys=[self.token_key(key), self.sessions_key(key.user_digest)], args=[key.digest]
            )
            pipe = client.pipeline(transaction=False)
            self._unindex(pipe, key.provider, [self.token_key(key)])
            await pipe.execute()
        return self.load(data) if data is not None else None

    async def apop_user(self, provider: str, uid: str) -> list[ChatToken]:
        if self._async_client_factory is None:
            return await super().apop_user(provider, uid)
        client, scripts = self._aclient()
        user_digest = SessionKey(provider, uid).user_digest
        payloads: list[bytes] = []
        with self._guard():
            for _ in range(10):
                members = await client.smembers(self.sessions_key(user_digest))
                if not members:
                    break
                keys, digests = self._pop_user_args(user_digest, members)
                payloads += await scripts["pop_user"](keys=keys, args=digests)
                pipe = client.pipeline(transaction=False)
                self._unindex(pipe, provider, keys[1:])
                await pipe.execute()
        return [self.load(p) for p in payloads]

    async def _atry_lock(self, key: SessionKey, owner: str, ttl: float) -> bool:
        if self._async_client_factory is None:
            return await super()._atry_lock(key, owner, ttl)
        client, _ = self._aclient()
        with self._guard():
            return bool(await client.set(self.lock_key(key), owner, nx=True, px=int(ttl * 1000)))

    async def _aunlock(self, key: SessionKey, owner: str) -> None:
        if self._async_client_factory is None:
            return await super()._aunlock(key, owner)
        _, scripts = self._aclient()
        with self._guard():
            await scripts["unlock"](keys=[self.lock_key(key)], args=[owner])
        return None

    async def aadd_pending(self, token: ChatToken, error_code: str) -> None:
        if self._async_client_factory is None:
            return await super().aadd_pending(token, error_code)
        client, _ = self._aclient()
        fields = {
            "token": self.dump(token),
            "attempts": 1,
            "error": error_code,
            "created": repr(self.clock.time()),
        }
        with self._guard():
            await client.xadd(self.pending_key, fields)  # type: ignore[arg-type]
        return None

    async def apending(self, limit: int = 100) -> list[PendingRevocation]:
        if self._async_client_factory is None:
            return await super().apending(limit)
        client, _ = self._aclient()
        with self._guard():
            rows = await client.xrange(self.pending_key, count=limit)
        return [self._entry(entry_id, fields or {}) for entry_id, fields in rows or []]

    async def aremove_pending(self, entry: PendingRevocation) -> None:
        if self._async_client_factory is None:
            return await super().aremove_pending(entry)
        client, _ = self._aclient()
        with self._guard():
            await client.xdel(self.pending_key, entry.id)
        return None

    async def aretry_failed(self, entry: PendingRevocation, error_code: str) -> None:
        if self._async_client_factory is None:
            return await super().aretry_failed(entry, error_code)
        _, scripts = self._aclient()
        with self._guard():
            await scripts["retry_pending"](
                keys=[self.pending_key], args=self._retry_args(entry, error_code)
            )
        return None

    async def acount_pending(self) -> int:
        if self._async_client_factory is None:
            return await super().acount_pending()
        client, _ = self._aclient()
        with self._guard():
            return int(await client.xlen(self.pending_key))

    async def aping(self) -> bool:
        """Async twin of :meth:`ping`."""
        if self._async_client_factory is None:
            return await asyncio.to_thread(self.ping)
        client, _ = self._aclient()
        with self._guard():
            return bool(await client.ping())

    async def aclose(self) -> None:
        """Close this event loop's async client and the sync client."""
        entry = self._async.pop(asyncio.get_running_loop(), None)
        if entry is not None:
            await entry[0].aclose()
        self.client.close()
