"""Reading and validating setting values: one place for every key's type and range.

Every reader takes the lower-case settings mapping (see :func:`chatauth.config.from_settings`)
and a lower-case key, and either returns a clean value or raises
:class:`~chatauth.errors.ConfigurationError` whose ``setting`` is the key in upper case. A
message never shows the value: some settings are secrets, and a malformed secret is still one.

A provider declares each of its settings once, as a :class:`Setting` (name, kind, secret or
not, required or default, allowed values, doc line) in its ``settings_spec``; one reader,
:func:`read_setting`, checks a value against its declaration, and the provider's
``settings_keys`` and the docs tables are derived from (and tested against) the same
declarations. Provider settings are also checked by kind before the provider reads them
(:func:`check_provider_settings`). A provider class of your own (``PROVIDER =
"myapp.chat.MyProvider"``) declares its settings the same way, or only the kinds of its extra
keys, ``settings_kinds = {"key": "text" | "url" | "mapping" | "any"}``; undeclared extra keys
are left to it.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import re
import urllib.parse
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any, Literal

from chatauth.errors import ConfigurationError

__all__ = [
    "HMAC_MIN_KEY_BYTES",
    "MAX_SESSION_IDLE",
    "MAX_STORE_TIMEOUT",
    "MAX_TIMEOUT",
    "MAX_TOKEN_TTL",
    "Setting",
    "check_hmac_secret",
    "check_provider_settings",
    "count",
    "mapping",
    "read_setting",
    "reference",
    "seconds",
    "store_timeout",
    "store_timeout_refused",
    "text",
    "url",
]

Kind = Literal["text", "url", "mapping", "any"]

#: The longest ``TOKEN_TTL`` / ``REFRESH_MARGIN`` accepted, seconds (366 days): a chat token
#: living longer than a year is a mistake, and much larger values overflow ``datetime``.
MAX_TOKEN_TTL = 366 * 86_400.0
#: The longest ``SESSION_IDLE`` accepted, seconds (10 years): an app session cookie age.
MAX_SESSION_IDLE = 3660 * 86_400.0
#: The longest ``TIMEOUT`` accepted, seconds: one HTTP phase of a token request.
MAX_TIMEOUT = 300.0
#: The longest ``STORE_TIMEOUT`` accepted, seconds: a logout waits this long for a locked
#: store before it journals the chat session's end.
MAX_STORE_TIMEOUT = 300.0
#: The most ``RETRY_ATTEMPTS`` accepted.
MAX_RETRY_ATTEMPTS = 10
#: RFC 7518 §3.2: an HMAC key must be at least as long as the hash output.
HMAC_MIN_KEY_BYTES = {"HS256": 32, "HS384": 48, "HS512": 64}


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _fail(key: str, message: str, **kwargs: Any) -> ConfigurationError:
    return ConfigurationError(f"{key.upper()} {message}", setting=key.upper(), **kwargs)


def _real(value: Any) -> float | None:
    """``value`` as a float if it is a real number or a numeric string, else ``None``."""
    if isinstance(value, bool):  # True is an int to Python, never a duration to a user
        return None
    if isinstance(value, str):
        value = value.strip()
    elif not isinstance(value, numbers.Real):
        return None
    try:
        return float(value)
    except (ValueError, OverflowError):
        return None


def seconds(
    settings: Mapping[str, Any],
    key: str,
    default: float,
    *,
    minimum: float,
    maximum: float,
) -> float:
    """A duration in seconds: a number, a numeric string (environment variables) or a
    ``timedelta``, finite and within ``[minimum, maximum]``.

    Raises:
        ConfigurationError: ``ERROR_CONFIG`` for anything else (``nan``, ``inf``, ``1e300``,
            ``True``, ``"soon"``...).
    """
    value = settings.get(key, default)
    number = value.total_seconds() if isinstance(value, timedelta) else _real(value)
    if number is None or not math.isfinite(number) or not minimum <= number <= maximum:
        bounds = f"from {_num(minimum)} to {_num(maximum)}"
        raise _fail(key, f"must be a number of seconds {bounds} (or a timedelta).")
    return number


def store_timeout(settings: Mapping[str, Any]) -> float | None:
    """``STORE_TIMEOUT``: seconds an SQLite store waits, in total, for a database another
    process keeps locked (SQLite's busy timeout plus retries) before the operation raises
    :class:`~chatauth.errors.StoreUnavailableError`; from 0 (fail at once) to
    :data:`MAX_STORE_TIMEOUT`. ``None`` when unset: the store's default (10 seconds).

    A logout meeting a locked store waits this long before it journals the end, so a short
    value keeps such a logout quick; the cost is that a busy moment longer than it (a large
    backup, a burst of writers) fails a token request with a 503 instead of waiting.

    Raises:
        ConfigurationError: ``ERROR_CONFIG`` for anything but such a number of seconds.
    """
    if settings.get("store_timeout") is None:
        return None
    return seconds(settings, "store_timeout", 0, minimum=0, maximum=MAX_STORE_TIMEOUT)


def store_timeout_refused() -> ConfigurationError:
    """The error for ``STORE_TIMEOUT`` given with a store that does not take it: only SQLite
    stores (``sqlite://``, Django's ORM store on SQLite) wait for a lock; Redis and SQL URLs
    carry their own timeouts, and a ready store instance was built with its own."""
    return _fail(
        "store_timeout",
        "applies to SQLite stores only (sqlite:// or Django's ORM store on SQLite); set a "
        "Redis or SQL store's timeouts in its URL (socket_timeout=, connect_timeout=).",
    )


def count(
    settings: Mapping[str, Any], key: str, default: int, *, minimum: int, maximum: int
) -> int:
    """A whole number within ``[minimum, maximum]``: an int, an integral float or a string of
    digits. ``0.5`` is refused, never truncated.

    Raises:
        ConfigurationError: ``ERROR_CONFIG`` for anything else.
    """
    number = _real(settings.get(key, default))
    if (
        number is None
        or not math.isfinite(number)
        or not number.is_integer()
        or not minimum <= number <= maximum
    ):
        raise _fail(key, f"must be a whole number from {minimum} to {maximum}.")
    return int(number)


def text(settings: Mapping[str, Any], key: str, default: str | None = None) -> str | None:
    """A string setting, or ``default`` when absent.

    Raises:
        ConfigurationError: ``ERROR_CONFIG`` when the value is not a string.
    """
    value = settings.get(key)
    if value is None:
        return default
    if not isinstance(value, str):
        raise _fail(key, "must be a string.")
    return value


def url(settings: Mapping[str, Any], key: str) -> str | None:
    """An absolute http(s) URL with a host, or ``None`` when absent or blank.

    Raises:
        ConfigurationError: ``ERROR_CONFIG`` for a non-string, another scheme, no host, or
            an unparsable URL (bad IPv6 literal, port out of range).
    """
    value = text(settings, key)
    if value is None or not value.strip():
        return None
    try:
        parsed = urllib.parse.urlsplit(value)
        parsed.port  # noqa: B018 - parsing the port is the check (ValueError when malformed)
    except ValueError:
        raise _fail(key, "is not a valid URL.") from None
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise _fail(key, "must be an http(s) URL.")
    return value


def mapping(settings: Mapping[str, Any], key: str) -> Mapping[str, Any] | None:
    """A dict setting, or ``None`` when absent.

    Raises:
        ConfigurationError: ``ERROR_CONFIG`` when the value is not a mapping with string keys.
    """
    value = settings.get(key)
    if value is None:
        return None
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise _fail(key, "must be a dict with string keys.")
    return value


def reference(settings: Mapping[str, Any], key: str) -> str | Callable[[Any], Any] | None:
    """A callable, an attribute name, or a dotted path (``pkg.mod.func`` / ``pkg.mod:func``)
    to an importable callable; ``None`` when absent.

    Raises:
        ConfigurationError: ``ERROR_CONFIG`` for another type, an empty string, a path that
            does not import, or one that names something not callable.
    """
    value = settings.get(key)
    if value is None or callable(value):
        return value
    if not isinstance(value, str) or not value.strip():
        raise _fail(key, "must be an attribute name, a dotted path to a callable, or a callable.")
    if "." in value or ":" in value:
        from chatauth.identity import import_string

        try:
            target = import_string(value)
        except ConfigurationError:
            raise _fail(key, "is a dotted path that cannot be imported.") from None
        if not callable(target):
            raise _fail(key, "is a dotted path to something that is not callable.")
    return value


def check_hmac_secret(secret: str | bytes, algorithm: str, setting: str) -> None:
    """Refuse an HMAC key shorter than its hash (RFC 7518 §3.2): HS256 needs at least 32
    bytes, HS384 48, HS512 64 (UTF-8 bytes of a string).

    Raises:
        ConfigurationError: ``ERROR_CONFIG`` naming ``setting`` and the length needed.
    """
    needed = HMAC_MIN_KEY_BYTES.get(algorithm)
    raw = secret.encode() if isinstance(secret, str) else secret
    if needed is not None and len(raw) < needed:
        raise ConfigurationError(
            f"{setting} is too short for {algorithm}: use at least {needed} bytes "
            f"(RFC 7518 §3.2), e.g. python -c 'import secrets; print(secrets.token_urlsafe"
            f"({needed}))'.",
            setting=setting,
        )


@dataclasses.dataclass(frozen=True)
class Setting:
    """One provider setting, declared once.

    Attributes:
        name: the provider constructor's argument; the key is ``<settings_prefix>_<name>``
            (lower case; upper case in messages and docs).
        doc: one line for the docs: what the value is, where to find it.
        kind: ``"text"`` (a string; blank counts as absent), ``"url"`` (an absolute http(s)
            URL) or ``"mapping"`` (a dict with string keys).
        secret: a credential: missing gives ``ERROR_API_KEY_NOT_FOUND``; it never reaches a
            message, a repr or the client config.
        key: an API key or key id that is public (Stream's API key): missing gives
            ``ERROR_API_KEY_NOT_FOUND`` too.
        required: absent or blank is an error (``ERROR_CONFIG``, or as ``secret`` says).
        default: the value when absent or blank (``None``: stays absent).
        choices: the values a text setting may take.
        lower: a text value is lower-cased before ``choices`` and ``pattern`` are checked.
        pattern: a regular expression a text value must match whole.
        shape: what ``pattern`` or ``choices`` mean, for the message ("one of us, eu, in").
    """

    name: str
    doc: str
    kind: Literal["text", "url", "mapping"] = "text"
    secret: bool = False
    key: bool = False
    required: bool = False
    default: Any = None
    choices: tuple[str, ...] = ()
    lower: bool = False
    pattern: str | None = None
    shape: str | None = None


def read_setting(settings: Mapping[str, Any], key: str, declared: Setting) -> Any:
    """The value of ``key`` checked against its declaration: the clean value, the default,
    or ``None`` for an optional setting left out.

    Raises:
        ConfigurationError: naming the key, never showing the value: ``ERROR_API_KEY_NOT_FOUND``
            for a missing secret, ``ERROR_CONFIG`` for anything else (wrong type, a URL that
            is not http(s), a value outside ``choices`` or not matching ``pattern``, a missing
            required value).
    """
    value: Any
    if declared.kind == "url":
        value = url(settings, key)
    elif declared.kind == "mapping":
        value = mapping(settings, key)
    else:
        value = text(settings, key)
        if value is not None and not value.strip():
            value = None
    if value is None:
        value = declared.default
    if value is None:
        if declared.required:
            raise _fail(
                key,
                "is required.",
                code="ERROR_API_KEY_NOT_FOUND"
                if declared.secret or declared.key
                else "ERROR_CONFIG",
            )
        return None
    if declared.kind == "text" and isinstance(value, str):
        if declared.lower:
            value = value.lower()
        if (declared.choices and value not in declared.choices) or (
            declared.pattern and not re.fullmatch(declared.pattern, value)
        ):
            shape = declared.shape or f"one of {', '.join(declared.choices)}"
            raise _fail(key, f"must be {shape}.")
    return value


def _kinds(provider_cls: type) -> dict[str, Kind]:
    """The kind of each key ``provider_cls`` reads: the declared settings of every class in
    its MRO (``settings_spec``, under that class's ``settings_prefix``), then its
    ``settings_kinds``; a key only listed in ``settings_keys`` is not checked."""
    kinds: dict[str, Kind] = {}
    for klass in reversed(provider_cls.__mro__):
        prefix = klass.__dict__.get("settings_prefix", getattr(klass, "settings_prefix", ""))
        for declared in klass.__dict__.get("settings_spec", ()):
            kinds[f"{prefix}_{declared.name}"] = declared.kind
    kinds.update(getattr(provider_cls, "settings_kinds", {}))
    return kinds


def check_provider_settings(settings: Mapping[str, Any], provider_cls: type) -> None:
    """Check the type of every provider key present before the provider reads them, so a
    provider never meets ``5`` where it expects a URL.

    Raises:
        ConfigurationError: ``ERROR_CONFIG`` naming the first malformed key.
    """
    for key, kind in sorted(_kinds(provider_cls).items()):
        if kind == "url":
            url(settings, key)
        elif kind == "mapping":
            mapping(settings, key)
        elif kind == "text":
            text(settings, key)
