"""The Redis store on a Redis Cluster or a Sentinel-watched primary/replica set.

Same keys, scripts and behaviour as :class:`~chatauth.stores.redis.RedisStore`; only the
clients differ (redis-py's ``RedisCluster`` and ``Sentinel``, sync and ``redis.asyncio``):

- ``redis+cluster://[[user]:password@]host:port[,host:port...][?options]``: any reachable
  node(s) of the cluster; the client learns the others and follows ``MOVED``/``ASK``
  redirections and failovers. Every key of one user carries the ``{<user digest>}`` hash tag,
  so each Lua script touches one slot; the pending-revocations stream ``<prefix>:pending`` is
  a key of its own and no script touches it together with a user's keys.
- ``redis+sentinel://[[user]:password@]host:port[,host:port...]/<service>[/<db>][?options]``:
  the sentinels to ask for ``<service>``'s primary; after a failover, new connections go to
  the promoted replica. The password is the data nodes'; ``sentinel_username`` and
  ``sentinel_password`` query options authenticate to the sentinels themselves.

Query options are redis-py's connection options (``socket_timeout=1`` ...), parsed by
redis-py's own URL parser, plus chatauth's ``key_prefix``. Ports default to 6379 (cluster)
and 26379 (sentinel). Connection pools here do not block: a process opens as many
connections as it has concurrent commands unless ``max_connections`` caps it (then a command
beyond the cap fails with a 503 instead of waiting).

During a failover the store raises :class:`~chatauth.errors.StoreUnavailableError` (token
endpoints answer 503 with ``Retry-After``) until the promoted replica answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import urllib.parse
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from chatauth.clock import Clock
from chatauth.errors import ConfigurationError, StoreUnavailableError
from chatauth.stores.base import TokenCipher
from chatauth.stores.redis import DEFAULT_PREFIX, DEFAULT_RETENTION, RedisStore, _aretry, _retry

try:
    import redis
    import redis.asyncio
    import redis.asyncio.cluster
    import redis.asyncio.sentinel
    import redis.cluster
    import redis.commands.core
    import redis.sentinel
    from redis.connection import parse_url
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import RedisClusterException
except ImportError as exc:  # pragma: no cover - depends on installed extras
    raise ImportError(
        "RedisClusterStore needs redis-py: pip install 'chatauth-middleware[redis]'"
    ) from exc

__all__ = ["RedisClusterStore", "RedisSentinelStore", "parse_hosts"]

CLUSTER_SCHEME = "redis+cluster"
SENTINEL_SCHEME = "redis+sentinel"

#: Client defaults, as for ``redis://`` (fail fast, a short retry), without the blocking pool.
TOPOLOGY_DEFAULTS: dict[str, Any] = {
    "socket_connect_timeout": 2.0,
    "socket_timeout": 5.0,
    "health_check_interval": 30,
}
#: redis-py's async pools cap connections (100; per node in a cluster) and fail beyond the cap;
#: left uncapped like the sync one unless the URL says otherwise.
UNCAPPED = 2**31


def _config_error(scheme: str, problem: str) -> ConfigurationError:
    return ConfigurationError(
        f"Invalid {scheme}:// STORE URL: {problem}. Expected "
        + (
            "redis+cluster://[[user]:password@]host:port[,host:port...]"
            if scheme == CLUSTER_SCHEME
            else "redis+sentinel://[[user]:password@]host:port[,host:port...]/<service>[/<db>]"
        ),
        setting="STORE",
    )


def parse_hosts(url: str, scheme: str, default_port: int) -> tuple[list[tuple[str, int]], str]:
    """Split a multi-host URL into its ``(host, port)`` list and the rest of it.

    Args:
        url: ``<scheme>://[userinfo@]host[:port][,host[:port]...][/path][?query]``.
        scheme: the expected scheme (``redis+cluster`` or ``redis+sentinel``).
        default_port: the port of a host given without one.

    Returns:
        The hosts, and ``redis://[userinfo@]<first host>[/path][?query]``: a URL redis-py's
        parser takes for the connection options.

    Raises:
        ConfigurationError: wrong scheme, no host, or a port that is not 1-65535 (the message
            names neither the password nor the query).
    """
    prefix = f"{scheme}://"
    if not url.lower().startswith(prefix):
        raise _config_error(scheme, f"it must start with {prefix}")
    rest = url[len(prefix) :]
    cut = min((i for i in (rest.find("/"), rest.find("?")) if i >= 0), default=len(rest))
    netloc, tail = rest[:cut], rest[cut:]
    userinfo, at, hostlist = netloc.rpartition("@")
    hosts: list[tuple[str, int]] = []
    for item in hostlist.split(","):
        item = item.strip()
        if item.startswith("["):  # [IPv6]:port
            if "]" not in item:
                raise _config_error(scheme, "a [ is not closed")
            host, _, after = item[1:].partition("]")
            port_text = after[1:] if after.startswith(":") else ""
        else:
            host, _, port_text = item.partition(":")
        if not host:
            raise _config_error(scheme, "a host is missing")
        if port_text:
            # ASCII digits only (int() refuses "²" and takes "١٢"), at most 5 of them (int()
            # refuses thousands); the text is not quoted: a URL missing its "@" has the
            # password where a port would be.
            if not (port_text.isascii() and port_text.isdigit() and len(port_text) <= 5):
                raise _config_error(scheme, "a port is not a number from 1 to 65535")
            port = int(port_text)
            if not 0 < port < 65536:
                raise _config_error(scheme, "a port is not a number from 1 to 65535")
        else:
            port = default_port
        hosts.append((host, port))
    first = f"[{hosts[0][0]}]" if ":" in hosts[0][0] else hosts[0][0]
    return hosts, f"redis://{userinfo}{at}{first}:{hosts[0][1]}{tail}"


def _split(scheme: str, url: str) -> urllib.parse.SplitResult:
    try:
        return urllib.parse.urlsplit(url)
    except ValueError:  # e.g. an unbalanced [ in a host
        raise _config_error(scheme, "it cannot be parsed") from None


def _options(
    scheme: str, plain_url: str, pop: tuple[str, ...]
) -> tuple[dict[str, Any], dict[str, str]]:
    """redis-py's connection kwargs for ``plain_url`` (without host/port), and the query options
    named in ``pop`` (chatauth's own, or the sentinels' credentials) taken out of them."""
    parts = _split(scheme, plain_url)
    query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    own = {k: v for k, v in query if k in pop}
    rest = urllib.parse.urlencode([(k, v) for k, v in query if k not in pop])
    try:
        kwargs: dict[str, Any] = parse_url(  # type: ignore[no-untyped-call]
            f"{parts.scheme}://{parts.netloc}{parts.path}?{rest}"
        )
    except ValueError as exc:
        raise _config_error(scheme, str(exc).rstrip(".")) from None
    kwargs.pop("host", None)
    kwargs.pop("port", None)
    return kwargs, own


def _where(scheme: str, hosts: list[tuple[str, int]], suffix: str = "") -> str:
    return f"{scheme}://" + ",".join(f"{h}:{p}" for h, p in hosts) + suffix


class _LazyCluster:
    """A sync ``redis.cluster.RedisCluster``, built on first use.

    redis-py's sync cluster client reads the cluster's layout in its constructor, so building
    it at start-up would make an app fail to start (with a raw ``RedisClusterException``)
    whenever the cluster is unreachable. Built on first use instead, a failure is the first
    request's :class:`~chatauth.errors.StoreUnavailableError` (503), and the next request
    tries again. Every attribute not defined here is the real client's.

    Attributes:
        startup: the ``(host, port)`` nodes from the URL.
        options: the keyword arguments for ``RedisCluster``.
    """

    def __init__(self, startup: list[tuple[str, int]], options: dict[str, Any]) -> None:
        self.startup = startup
        self.options = options
        self._client: redis.cluster.RedisCluster | None = None
        self._lock = threading.Lock()

    def _real(self) -> redis.cluster.RedisCluster:
        with self._lock:
            if self._client is None:
                self._client = redis.cluster.RedisCluster(
                    startup_nodes=[
                        redis.cluster.ClusterNode(h, p)  # type: ignore[no-untyped-call]
                        for h, p in self.startup
                    ],
                    retry=_retry(),
                    **self.options,
                )
            return self._client

    def register_script(self, script: str) -> redis.commands.core.Script:
        # Bytes, so that the Script needs no encoder from a client that does not exist yet.
        return redis.commands.core.Script(self, script.encode())  # type: ignore[arg-type]

    def close(self) -> None:
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real(), name)


class _AsyncCluster(redis.asyncio.cluster.RedisCluster):
    """The async cluster client, hardened against two races of redis-py 8.1 (measured here):

    - a fresh client sends its first concurrent commands to the startup nodes while one of
      them re-reads the layout and closes those nodes' connections under them; so the layout
      is read first (``initialize`` takes the client's own lock);
    - during a failover, a command in flight on a node whose connections a re-read closes
      fails with ``AttributeError: 'NoneType' object has no attribute 'writelines'`` (the same
      family as https://github.com/redis/redis-py/issues/3835). That is a connection lost to
      a topology change: it is raised as ``ConnectionError`` (a 503), not a 500.
    """

    async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        if self._initialize:
            await self.initialize()
        try:
            return await super().execute_command(*args, **kwargs)
        except AttributeError as exc:
            raise RedisConnectionError(
                f"cluster connection closed during a topology change ({exc})"
            ) from exc


class _TopologyStore(RedisStore):
    """What the cluster and sentinel stores share: the repr, and the cluster client's own
    exception family mapped to ``StoreUnavailableError``."""

    def __init__(self, client: Any, **kwargs: Any) -> None:
        # ``client`` is a cluster client or a Sentinel-managed one, not only ``redis.Redis``.
        super().__init__(client, **kwargs)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._where!r} prefix={self.prefix!r}>"

    @contextlib.contextmanager
    def _guard(self) -> Iterator[None]:
        try:
            with super()._guard():
                yield
        except RedisClusterException as exc:  # e.g. SlotNotCoveredError; not a RedisError
            raise StoreUnavailableError(
                f"The Redis token store at {self._where} failed ({type(exc).__name__}).",
                provider=self.name,
                retry_after=1,
            ) from None


class RedisClusterStore(_TopologyStore):
    """:class:`~chatauth.stores.redis.RedisStore` on a Redis Cluster (``redis+cluster://``).

    Build it with :meth:`from_url`; the constructor takes a ``redis.cluster.RedisCluster``
    and a factory of ``redis.asyncio.cluster.RedisCluster`` clients like ``RedisStore``'s.
    """

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
    ) -> RedisClusterStore:
        """A store for ``redis+cluster://[[user]:password@]host:port[,host:port...]``.

        Args:
            url: one or more nodes of the cluster (any of them; the client discovers the
                rest); query options as for ``redis://``, plus ``key_prefix``. No database
                number: a cluster has only database 0.
            cipher: optional payload cipher (``STORE_ENCRYPTION_KEY``).
            prefix: key prefix; overrides ``key_prefix`` in the URL.
            retention: seconds (or ``timedelta``) a never-expiring token is kept past its
                ``refresh_at``.
            clock: the store's clock (default the system clock).
            client_options: extra keyword arguments for both cluster clients.

        Raises:
            ConfigurationError: the URL is malformed (the message never shows the password).
        """
        hosts, plain = parse_hosts(url, CLUSTER_SCHEME, 6379)
        kwargs, own = _options(CLUSTER_SCHEME, plain, ("key_prefix",))
        if kwargs.pop("db", 0) != 0:
            raise _config_error(CLUSTER_SCHEME, "a cluster has no database but 0")
        options = {**TOPOLOGY_DEFAULTS, **kwargs, **client_options}
        client = _LazyCluster(hosts, options)

        def async_client() -> Any:
            return _AsyncCluster(
                startup_nodes=[redis.asyncio.cluster.ClusterNode(h, p) for h, p in hosts],
                retry=_aretry(),
                **{"max_connections": UNCAPPED, **options},
            )

        store = cls(
            client,
            async_client_factory=async_client,
            cipher=cipher,
            prefix=prefix or own.get("key_prefix") or DEFAULT_PREFIX,
            retention=retention,
            clock=clock,
        )
        store._where = _where(CLUSTER_SCHEME, hosts)
        return store


class RedisSentinelStore(_TopologyStore):
    """:class:`~chatauth.stores.redis.RedisStore` on the primary a set of Redis Sentinels
    names (``redis+sentinel://``). After a failover, new connections go to the new primary.

    Build it with :meth:`from_url`.
    """

    def __init__(
        self,
        client: Any,
        *,
        sentinel: redis.sentinel.Sentinel | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(client, **kwargs)
        self.sentinel = sentinel

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
    ) -> RedisSentinelStore:
        """A store for ``redis+sentinel://[[user]:password@]host:port[,...]/<service>[/<db>]``.

        Args:
            url: the sentinels and the service name they monitor; query options as for
                ``redis://``, plus ``key_prefix``, ``sentinel_username``,
                ``sentinel_password``.
            cipher: optional payload cipher (``STORE_ENCRYPTION_KEY``).
            prefix: key prefix; overrides ``key_prefix`` in the URL.
            retention: seconds (or ``timedelta``) a never-expiring token is kept past its
                ``refresh_at``.
            clock: the store's clock (default the system clock).
            client_options: extra keyword arguments for the data-node clients.

        Raises:
            ConfigurationError: the URL is malformed or names no service (the message never
                shows a password).
        """
        hosts, plain = parse_hosts(url, SENTINEL_SCHEME, 26379)
        parts = _split(SENTINEL_SCHEME, plain)
        service, _, db_text = parts.path.strip("/").partition("/")
        if not service:
            raise _config_error(SENTINEL_SCHEME, "the service name is missing")
        if db_text and not db_text.isdigit():
            raise _config_error(SENTINEL_SCHEME, "the database must be a number")
        plain = f"{parts.scheme}://{parts.netloc}/{db_text or 0}"
        plain += f"?{parts.query}" if parts.query else ""
        own_keys = ("key_prefix", "sentinel_username", "sentinel_password")
        kwargs, own = _options(SENTINEL_SCHEME, plain, own_keys)
        options = {**TOPOLOGY_DEFAULTS, **kwargs, **client_options}
        sentinel_kwargs: dict[str, Any] = {
            "socket_connect_timeout": options["socket_connect_timeout"],
            "socket_timeout": options["socket_timeout"],
        }
        if own.get("sentinel_username"):
            sentinel_kwargs["username"] = own["sentinel_username"]
        if own.get("sentinel_password"):
            sentinel_kwargs["password"] = own["sentinel_password"]

        sentinel = redis.sentinel.Sentinel(  # type: ignore[no-untyped-call]
            hosts, sentinel_kwargs=sentinel_kwargs
        )
        client = sentinel.master_for(  # type: ignore[no-untyped-call]
            service, redis_class=redis.Redis, retry=_retry(), **options
        )

        def async_client() -> Any:
            # Each new connection to the primary asks a sentinel first: uncap those pools too.
            asentinel = redis.asyncio.sentinel.Sentinel(  # type: ignore[no-untyped-call]
                hosts, sentinel_kwargs={"max_connections": UNCAPPED, **sentinel_kwargs}
            )
            return asentinel.master_for(
                service,
                redis_class=redis.asyncio.Redis,
                retry=_aretry(),
                **{"max_connections": UNCAPPED, **options},
            )

        store = cls(
            client,
            sentinel=sentinel,
            async_client_factory=async_client,
            cipher=cipher,
            prefix=prefix or own.get("key_prefix") or DEFAULT_PREFIX,
            retention=retention,
            clock=clock,
        )
        store._where = _where(SENTINEL_SCHEME, hosts, f"/{service}")
        return store

    def close(self) -> None:
        """Close the primary's and the sentinels' sync connections."""
        super().close()
        for client in self.sentinel.sentinels if self.sentinel is not None else []:
            client.close()

    async def aclose(self) -> None:
        """Close this event loop's clients (primary and sentinels) and the sync ones."""
        entry = self._async.get(asyncio.get_running_loop())
        # The async primary's pool holds the loop's Sentinel (redis-py's SentinelConnectionPool).
        pool = entry[0].connection_pool if entry is not None else None
        asentinel = getattr(pool, "sentinel_manager", None)
        await super().aclose()
        for client in asentinel.sentinels if asentinel is not None else []:
            await client.aclose()
        self.close()
