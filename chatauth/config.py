"""Building a :class:`~chatauth.service.ChatAuth` from settings.

One function serves every framework: Django's ``CHATAUTH = {...}`` dict, Flask's
``CHATAUTH_*`` config keys (prefix stripped) and keyword arguments in Starlette. Keys are
case-insensitive.

Common settings (provider settings are listed in each provider module):

=================== ==================================================================
``PROVIDER``        ``"jwt"``, ``"matrix"``, ``"cometchat"``, ... or a dotted path (required)
``STORE``           store URL: ``sqlite:///chatauth.sqlite3`` (default, relative path),
                    ``sqlite:////abs/path.db``, ``memory://``, ``redis://host:6379/0``,
                    ``rediss://...``, ``unix:///run/redis.sock``,
                    ``redis+cluster://h1:p1,h2:p2``, ``redis+sentinel://h1:p1,h2:p2/service``,
                    ``postgresql://user:pw@host/db`` (SQLAlchemy); or a store instance
``STORE_ENCRYPTION_KEY`` Fernet key to encrypt tokens at rest (Redis, SQLite)
``STORE_TIMEOUT``   SQLite stores only: seconds an operation waits, in total, for a database
                    another process keeps locked before it fails as unavailable (default 10;
                    0 = fail at once). Redis and SQL URLs carry their own timeouts
                    (``socket_timeout=``, ``connect_timeout=``)
``TOKEN_TTL``       token lifetime in seconds or a ``timedelta`` (default 3600)
``REFRESH_MARGIN``  re-issue when less than this is left, seconds (default 300)
``UID_MAPPER``      attribute name, dotted path or callable: app user -> UID
``UID_PREFIX``      prefix for attribute/default UIDs (default ``"user-"``)
``NAME_ATTRIBUTE``  attribute, dotted path or callable for the display name
``AVATAR_ATTRIBUTE`` attribute, dotted path or callable for the avatar URL
``TIMEOUT``         seconds per HTTP phase (default 5)
``RETRY_ATTEMPTS``  tries per provider request (default 3)
``SESSION_IDLE``    the sweep ends chat sessions not served for this long, seconds or a
                    ``timedelta`` (default 14 days; the adapters pass the framework's session age)
``LOCAL_CACHE``     seconds a process keeps a chat session it served, so that reading it
                    again costs no store call (default 5; 0 = off). A logout served by
                    another process reaches this one within that time
``JOURNAL``         file where logouts keep the ends a down store missed (default: next to an
                    SQLite store's file, ``<store file>.ends``; none for other stores;
                    ``False`` turns it off)
=================== ==================================================================
"""

from __future__ import annotations

import os
import urllib.parse
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from chatauth import settings as readers
from chatauth.errors import ConfigurationError
from chatauth.hits import DEFAULT_LOCAL_CACHE, MAX_LOCAL_CACHE
from chatauth.http import RetryPolicy
from chatauth.identity import IdentityMapper
from chatauth.journal import EndJournal
from chatauth.providers import BaseProvider, provider_class
from chatauth.service import DEFAULT_SESSION_IDLE, ChatAuth
from chatauth.stores.base import BaseStore

__all__ = [
    "COMMON_KEYS",
    "default_journal_path",
    "from_settings",
    "normalize_settings",
    "store_from_url",
]

COMMON_KEYS = frozenset(
    {
        "provider",
        "store",
        "store_encryption_key",
        "store_timeout",
        "token_ttl",
        "refresh_margin",
        "session_idle",
        "local_cache",
        "journal",
        "uid_mapper",
        "uid_prefix",
        "name_attribute",
        "avatar_attribute",
        "timeout",
        "retry_attempts",
    }
)
DEFAULT_STORE = "sqlite:///chatauth.sqlite3"


def normalize_settings(settings: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Lower-case keys, keeping only those starting with ``prefix`` (which is removed).

    ``normalize_settings(app.config, "CHATAUTH_")`` turns Flask config into settings.
    """
    out: dict[str, Any] = {}
    for key, value in settings.items():
        if not isinstance(key, str) or not key.upper().startswith(prefix.upper()):
            continue
        out[key[len(prefix) :].lower()] = value
    return out


def _cipher(key: str | bytes | None) -> Any:
    if not key:
        return None
    try:
        from chatauth.stores.crypto import FernetCipher
    except ImportError as exc:  # pragma: no cover - depends on installed extras
        raise ConfigurationError(
            "STORE_ENCRYPTION_KEY needs the cryptography package: "
            "pip install 'chatauth-middleware[redis]'",
            setting="STORE_ENCRYPTION_KEY",
        ) from exc
    return FernetCipher(key)


def store_from_url(
    url: str, *, encryption_key: str | bytes | None = None, timeout: float | None = None
) -> BaseStore:
    """A store for a URL (see the module docstring for the forms).

    Args:
        url: the ``STORE`` URL.
        encryption_key: ``STORE_ENCRYPTION_KEY``.
        timeout: ``STORE_TIMEOUT``, seconds (already validated,
            :func:`chatauth.settings.store_timeout`); ``None`` for the store's default. Only an
            ``sqlite://`` store takes it.

    Raises:
        ConfigurationError: ``STORE``: not a string, unparsable (a bad IPv6 literal, a port
            out of range, options redis-py refuses), an unknown scheme, or the store's extra
            is not installed. ``STORE_ENCRYPTION_KEY``: not a Fernet key. ``STORE_TIMEOUT``:
            given for a store other than ``sqlite://``. The message never shows the URL,
            which may hold a password.
    """
    if not isinstance(url, str):
        raise ConfigurationError("STORE must be a URL or a store instance.", setting="STORE")
    if encryption_key is not None and not isinstance(encryption_key, (str, bytes)):
        raise ConfigurationError(
            "STORE_ENCRYPTION_KEY must be a string of Fernet keys.", setting="STORE_ENCRYPTION_KEY"
        )
    try:
        scheme = urllib.parse.urlsplit(url).scheme.lower()
    except ValueError:  # e.g. an unbalanced [ in the host part: the store's parser says so
        scheme = url.partition("://")[0].lower()
    if timeout is not None and scheme != "sqlite":
        raise readers.store_timeout_refused()
    if scheme == "memory":
        from chatauth.stores.memory import MemoryStore

        return MemoryStore()
    if scheme == "sqlite":
        path = url[len("sqlite:///") :] if url.lower().startswith("sqlite:///") else ""
        if not path or "\x00" in path:
            raise ConfigurationError(
                "STORE must look like sqlite:///relative.db or sqlite:////absolute/path.db.",
                setting="STORE",
            )
        from chatauth.stores.sqlite import DEFAULT_TIMEOUT, SQLiteStore

        return SQLiteStore(
            Path(path),
            cipher=_cipher(encryption_key),
            timeout=DEFAULT_TIMEOUT if timeout is None else timeout,
        )
    if scheme in ("redis", "rediss", "unix"):
        try:
            from chatauth.stores.redis import RedisStore
        except ImportError as exc:
            raise ConfigurationError(
                "A redis:// STORE needs redis-py: pip install 'chatauth-middleware[redis]'",
                setting="STORE",
            ) from exc
        try:
            parsed = urllib.parse.urlsplit(url)
            parsed.port  # noqa: B018 - parsing the port is the check (ValueError when malformed)
        except ValueError:
            raise ConfigurationError("STORE is not a valid URL.", setting="STORE") from None
        if scheme != "unix" and parsed.path.strip("/") and not parsed.path.strip("/").isdigit():
            # redis-py would silently fall back to database 0.
            raise ConfigurationError(
                "STORE's database must be a number: redis://host:6379/0.", setting="STORE"
            )
        cipher = _cipher(encryption_key)
        try:
            store: BaseStore = RedisStore.from_url(url, cipher=cipher)
        except ConfigurationError:
            raise
        except (ValueError, TypeError):
            # redis-py's messages may quote the URL, password included: name the key only.
            raise ConfigurationError(
                "STORE is not a valid Redis URL (host, port, database number or options).",
                setting="STORE",
            ) from None
        return store
    if scheme in ("redis+cluster", "redis+sentinel"):
        return _redis_topology_store(url, scheme, encryption_key)
    if scheme == "postgresql" or scheme.startswith(("postgresql+", "sqlite+")):
        try:
            from chatauth.stores.sql import SQLAlchemyStore
        except ImportError as exc:
            raise ConfigurationError(
                f"A {scheme}:// STORE needs SQLAlchemy: pip install "
                "'chatauth-middleware[sql,postgres]'",
                setting="STORE",
            ) from exc
        return SQLAlchemyStore.from_url(url, cipher=_cipher(encryption_key))
    raise ConfigurationError(
        # The value is not repeated: it may hold a password.
        "Unknown STORE scheme: use sqlite://, memory://, redis://, rediss://, unix://, "
        "redis+cluster://, redis+sentinel://, postgresql:// or sqlite+pysqlite://.",
        setting="STORE",
    )


def _redis_topology_store(url: str, scheme: str, encryption_key: str | bytes | None) -> BaseStore:
    try:
        from chatauth.stores.redis_topologies import RedisClusterStore, RedisSentinelStore
    except ImportError as exc:
        raise ConfigurationError(
            f"A {scheme}:// STORE needs redis-py: pip install 'chatauth-middleware[redis]'",
            setting="STORE",
        ) from exc
    cls = RedisClusterStore if scheme == "redis+cluster" else RedisSentinelStore
    store: BaseStore = cls.from_url(url, cipher=_cipher(encryption_key))
    return store


def from_settings(
    settings: Mapping[str, Any], *, ignore: Iterable[str] = (), **overrides: Any
) -> ChatAuth:
    """Build a validated :class:`ChatAuth` from settings.

    Args:
        settings: the settings, keys in any case (``normalize_settings`` for prefixed ones).
        ignore: keys the calling integration handles itself (e.g. ``"url_prefix"``).
        overrides: keyword arguments passed straight to :class:`ChatAuth` (``transport=``,
            ``http_client=``, a ready ``store=``...).

    Raises:
        ConfigurationError: a missing or malformed setting; the message names the key and
            never shows a value. Unknown keys are refused too: a typo must not silently fall
            back to a default.
    """
    # A key set to None counts as unset (Flask configs and env-derived dicts carry such keys).
    cfg = {str(k).lower(): v for k, v in settings.items() if v is not None}
    name = cfg.get("provider")
    if not name:
        raise ConfigurationError(
            "The setting 'PROVIDER' is required (e.g. 'jwt', 'matrix', 'cometchat').",
            setting="PROVIDER",
        )
    if isinstance(name, type):
        if not issubclass(name, BaseProvider):
            raise ConfigurationError(
                "PROVIDER must be a provider name, a dotted path or a BaseProvider subclass.",
                setting="PROVIDER",
            )
        cls: type[BaseProvider] = name
    elif isinstance(name, str):
        cls = provider_class(name)
    else:
        raise ConfigurationError(
            "PROVIDER must be a provider name such as 'jwt' or a dotted path.", setting="PROVIDER"
        )
    allowed = COMMON_KEYS | cls.settings_keys | {k.lower() for k in ignore}
    unknown = sorted(set(cfg) - allowed)
    if unknown:
        raise ConfigurationError(
            f"Unknown setting(s) {', '.join(k.upper() for k in unknown)} for provider "
            f"{cls.name!r}.",
            setting=unknown[0].upper(),
        )
    readers.check_provider_settings(cfg, cls)
    provider = cls.from_settings(cfg)

    # Every plain value is checked before the store is built: a store may create a file or a
    # connection pool, which a refused setting must not leave behind.
    mapper: Callable[[Any], Any] = IdentityMapper(
        readers.reference(cfg, "uid_mapper"),
        uid_prefix=readers.text(cfg, "uid_prefix", "user-") or "",
        name=readers.reference(cfg, "name_attribute"),
        avatar=readers.reference(cfg, "avatar_attribute"),
    )
    attempts = readers.count(
        cfg, "retry_attempts", 3, minimum=1, maximum=readers.MAX_RETRY_ATTEMPTS
    )
    token_ttl = readers.seconds(cfg, "token_ttl", 3600, minimum=1, maximum=readers.MAX_TOKEN_TTL)
    refresh_margin = readers.seconds(
        cfg, "refresh_margin", 300, minimum=0.001, maximum=readers.MAX_TOKEN_TTL
    )
    if refresh_margin >= token_ttl:
        raise ConfigurationError(
            "REFRESH_MARGIN must be shorter than TOKEN_TTL.", setting="REFRESH_MARGIN"
        )
    timeout = readers.seconds(cfg, "timeout", 5.0, minimum=0.001, maximum=readers.MAX_TIMEOUT)
    session_idle = readers.seconds(
        cfg, "session_idle", DEFAULT_SESSION_IDLE, minimum=1, maximum=readers.MAX_SESSION_IDLE
    )
    local_cache = readers.seconds(
        cfg, "local_cache", DEFAULT_LOCAL_CACHE, minimum=0, maximum=MAX_LOCAL_CACHE
    )
    store_timeout = readers.store_timeout(cfg)
    journal = cfg.get("journal")
    if journal is not None and journal is not False and not isinstance(journal, (str, os.PathLike)):
        raise ConfigurationError(
            "JOURNAL must be a file path (or False for none).", setting="JOURNAL"
        )

    store = overrides.pop("store", None) or cfg.get("store") or DEFAULT_STORE
    if isinstance(store, str):
        store = store_from_url(
            store, encryption_key=cfg.get("store_encryption_key"), timeout=store_timeout
        )
    elif not isinstance(store, BaseStore):
        raise ConfigurationError("STORE must be a URL or a store instance.", setting="STORE")
    elif store_timeout is not None:
        # A ready store was built with its own timeout: silently ignoring the key would lie.
        raise readers.store_timeout_refused()

    return ChatAuth(
        provider,  # type: ignore[arg-type]
        store,
        mapper=overrides.pop("mapper", mapper),
        token_ttl=token_ttl,
        refresh_margin=refresh_margin,
        session_idle=session_idle,
        local_cache=local_cache,
        journal=overrides.pop("journal", _journal(cfg, store)),
        timeout=timeout,
        retry=overrides.pop("retry", RetryPolicy(attempts=attempts)),
        **overrides,
    )


def default_journal_path(store: BaseStore) -> Path | None:
    """Where the journal of ends a down store missed lives when ``JOURNAL`` is not set: next to
    an SQLite store's file (``<file>.ends``), on the machine whose workers and sweep share that
    file. ``None`` for other stores: a Redis or database store serves many machines, and a
    journal is local to one, so its place is the deployment's choice (``JOURNAL``)."""
    from chatauth.stores.sqlite import SQLiteStore  # imported where used, as in store_from_url

    if isinstance(store, SQLiteStore):
        return store.path.with_name(store.path.name + ".ends")
    return None


def _journal(cfg: Mapping[str, Any], store: BaseStore) -> EndJournal | None:
    if "journal" not in cfg:
        path = default_journal_path(store)
        return EndJournal(path) if path is not None else None
    return EndJournal(cfg["journal"]) if cfg["journal"] else None
