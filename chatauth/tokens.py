"""Chat tokens: the bearer credential a provider issues for one chat user."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import re
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

from chatauth.errors import InvalidTokenError

__all__ = ["ChatToken", "SessionKey", "utcnow"]


def utcnow() -> datetime:
    """The current time as an aware UTC datetime."""
    return datetime.now(timezone.utc)


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


@dataclasses.dataclass(frozen=True, repr=False)
class ChatToken:
    """A chat credential issued for one UID.

    Attributes:
        value: the bearer secret itself (auth token, access token, JWT). Never logged:
            ``repr()`` shows only its length.
        uid: the chat user it was issued for.
        provider: provider name, e.g. ``"matrix"``.
        issued_at: aware UTC datetime.
        expires_at: aware UTC datetime, or ``None`` when the provider's token never expires
            (chatauth still re-issues it after ``token_ttl``, see :attr:`refresh_at`).
        refresh_at: aware UTC datetime after which chatauth issues a fresh token; for
            never-expiring tokens this is ``issued_at + token_ttl``.
        data: provider facts needed later, public or not (Matrix ``device_id`` and
            ``user_id``). Only the keys in ``public`` reach the browser.
        public: names of ``data`` keys the front-end SDK needs (sent in ``client``).
        served_at: aware UTC datetime the store last recorded this token being served (set
            when stored, refreshed by ``get_session`` hits at a coarse granularity); ``None``
            when the store does not know. Store metadata: not part of :meth:`to_dict`, not
            compared. The sweep ends tokens not served for longer than the app's session age.
    """

    value: str
    uid: str
    provider: str
    issued_at: datetime
    expires_at: datetime | None
    refresh_at: datetime | None = None
    data: Mapping[str, str] = dataclasses.field(default_factory=dict)
    public: tuple[str, ...] = ()
    served_at: datetime | None = dataclasses.field(default=None, compare=False)
    # True only for a token read back from our own store: its value was checked when it was
    # issued, so the hot path does not scan it again on every load.
    checked: dataclasses.InitVar[bool] = False

    def __post_init__(self, checked: bool) -> None:
        if not checked:
            check_token_value(self.value)
        object.__setattr__(self, "issued_at", _aware(self.issued_at))
        if self.expires_at is not None:
            object.__setattr__(self, "expires_at", _aware(self.expires_at))
        if self.refresh_at is not None:
            object.__setattr__(self, "refresh_at", _aware(self.refresh_at))
        if self.served_at is not None:
            object.__setattr__(self, "served_at", _aware(self.served_at))
        object.__setattr__(self, "data", dict(self.data))
        object.__setattr__(self, "public", tuple(self.public))

    def __repr__(self) -> str:
        return (
            f"ChatToken(provider={self.provider!r}, uid={self.uid!r}, value=<{len(self.value)} "
            f"chars redacted>, issued_at={self.issued_at.isoformat()}, "
            f"expires_at={self.expires_at.isoformat() if self.expires_at else None})"
        )

    @property
    def fingerprint(self) -> str:
        """A short, non-reversible id of the value (sha256, 12 hex chars) for logs and admin."""
        return hashlib.sha256(self.value.encode()).hexdigest()[:12]

    def usable_until(self) -> datetime | None:
        """The earlier of ``expires_at`` and ``refresh_at``; ``None`` if neither is set."""
        limits = [d for d in (self.expires_at, self.refresh_at) if d is not None]
        return min(limits) if limits else None

    def is_fresh(self, margin: timedelta, now: datetime | None = None) -> bool:
        """True while the token stays usable for longer than ``margin`` from ``now``."""
        until = self.usable_until()
        return until is None or until - margin > (now or utcnow())

    def is_expired(self, now: datetime | None = None) -> bool:
        """True once ``expires_at`` has passed (a never-expiring token never is)."""
        return self.expires_at is not None and self.expires_at <= (now or utcnow())

    def client_data(self) -> dict[str, str]:
        """The public part of ``data`` for the front end."""
        return {k: self.data[k] for k in self.public if k in self.data}

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict (datetimes as ISO 8601 strings) for the stores."""
        return {
            "value": self.value,
            "uid": self.uid,
            "provider": self.provider,
            "issued_at": self.issued_at.isoformat(),
            "expires_at": self.expires_at.isoformat() if self.expires_at else None,
            "refresh_at": self.refresh_at.isoformat() if self.refresh_at else None,
            "data": dict(self.data),
            "public": list(self.public),
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any], *, served_at: datetime | None = None) -> ChatToken:
        """The inverse of :meth:`to_dict`, for a store reading back what it wrote, with the
        store's ``served_at`` (aware UTC) when it keeps one (outside the dict).

        The value is not checked again: it was checked when the token was made, and this is
        the cached request path.
        """

        def when(key: str) -> datetime | None:
            value = raw.get(key)
            return datetime.fromisoformat(value) if value else None

        issued = when("issued_at")
        assert issued is not None
        return cls(
            value=raw["value"],
            uid=raw["uid"],
            provider=raw["provider"],
            issued_at=issued,
            expires_at=when("expires_at"),
            refresh_at=when("refresh_at"),
            data=raw.get("data") or {},
            public=tuple(raw.get("public") or ()),
            served_at=served_at,
            checked=True,
        )


# One scan for the whole value instead of a per-character generator: a token value is one or
# more characters, none of them white space (Unicode white space, as str.isspace()).
_VALID_TOKEN = re.compile(r"\S+")


def check_token_value(value: str) -> None:
    """Refuse token values that cannot be valid, with the CometChat SDK's codes.

    Raises:
        InvalidTokenError: ``ERROR_BLANK_AUTHTOKEN`` for an empty or blank value,
            ``ERROR_AUTHTOKEN_WITH_SPACE`` for a value containing white space,
            ``ERROR_BLANK_AUTHTOKEN`` for ``.`` or ``..`` (a token some providers put in a URL
            path, where those are dot-segments that URL normalisation removes).
    """
    if value in (".", ".."):
        raise InvalidTokenError(
            "The token is a relative path segment.", code="ERROR_BLANK_AUTHTOKEN"
        )
    if isinstance(value, str) and _VALID_TOKEN.fullmatch(value):
        return
    if not isinstance(value, str) or not value.strip():
        raise InvalidTokenError(
            "The provider returned a blank token.", code="ERROR_BLANK_AUTHTOKEN"
        )
    raise InvalidTokenError("The token contains white space.", code="ERROR_AUTHTOKEN_WITH_SPACE")


# Every cached request hashes its key: the digests of the recently used keys are kept (the
# app session ids in it are in this process's memory anyway, in the requests that carry them).
@functools.lru_cache(maxsize=4096)
def _digest(provider: str, uid: str, app_session: str) -> str:
    return hashlib.sha256("\x1f".join((provider, uid, app_session)).encode()).hexdigest()


@dataclasses.dataclass(frozen=True)
class SessionKey:
    """What one stored token belongs to: (provider, uid, app session).

    ``app_session`` is the app's session identifier (Django session key, a random id chatauth
    keeps in a Starlette/Flask session). It is a secret of the app's, so stores index by
    :attr:`digest` and never keep it in clear.
    """

    provider: str
    uid: str
    app_session: str | None = None

    @property
    def digest(self) -> str:
        """sha256 hex over the three parts; the store's primary key."""
        return _digest(self.provider, self.uid, self.app_session or "")

    @property
    def user_digest(self) -> str:
        """sha256 hex over (provider, uid): groups every session of one chat user."""
        return hashlib.sha256(f"{self.provider}\x1f{self.uid}".encode()).hexdigest()

    def __repr__(self) -> str:
        return f"SessionKey(provider={self.provider!r}, uid={self.uid!r}, app_session=<redacted>)"

    @classmethod
    def from_digest(cls, provider: str, uid: str, digest: str) -> SessionKey:
        """The key of a stored token known only by its :attr:`digest` (the app session id
        itself was not kept, e.g. in the end journal): every store finds the token by it."""
        return _DigestKey(provider, uid, None, digest)


@dataclasses.dataclass(frozen=True, repr=False)
class _DigestKey(SessionKey):
    known_digest: str = ""

    @property
    def digest(self) -> str:
        return self.known_digest
