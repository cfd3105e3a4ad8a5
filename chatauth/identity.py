"""Who the app user is in the chat: :class:`ChatIdentity`, UID rules and the identity mapper."""

from __future__ import annotations

import dataclasses
import importlib
import re
import unicodedata
from collections.abc import Callable
from typing import Any

from chatauth.errors import ConfigurationError, InvalidUIDError

__all__ = ["ChatIdentity", "IdentityMapper", "UIDRules", "import_string"]

_ACCEPTED_MAX = 4096


@dataclasses.dataclass(frozen=True)
class ChatIdentity:
    """An app user as the chat provider sees them.

    Attributes:
        uid: the chat user id (CometChat UID, Matrix localpart, Stream user id, ...).
        name: display name, or ``None``.
        avatar: avatar URL, or ``None``.
    """

    uid: str
    name: str | None = None
    avatar: str | None = None


@dataclasses.dataclass(frozen=True)
class UIDRules:
    """A provider's rules for UIDs.

    Attributes:
        pattern: regular expression a whole UID must match (``re.fullmatch``).
        max_length: most characters allowed.
        folds_case: the provider lower-cases UIDs on its side (CometChat), so a UID with upper
            case letters would silently become another user's: chatauth refuses it instead.
        description: the allowed set in words, for error messages.
        extra_check: optional callable returning an error message or ``None``.
    """

    pattern: str
    max_length: int
    folds_case: bool = False
    description: str = ""
    extra_check: Callable[[str], str | None] | None = None
    # Compiled once here rather than looked up in re's cache on every request.
    _compiled: re.Pattern[str] = dataclasses.field(init=False, repr=False, compare=False)
    # UIDs already accepted: the cached request path validates each user's UID once, not on
    # every request. Bounded so that a flood of distinct UIDs cannot grow it without end.
    _accepted: dict[tuple[str, str], None] = dataclasses.field(
        init=False, repr=False, compare=False, default_factory=dict
    )

    def __post_init__(self) -> None:
        object.__setattr__(self, "_compiled", re.compile(self.pattern))

    def validate(self, uid: str, provider: str) -> str:
        """Return ``uid`` unchanged if the provider accepts it as is.

        Raises:
            InvalidUIDError: ``ERROR_UID_WITH_SPACE`` if it holds white space,
                ``ERROR_INVALID_UID`` if it is empty, not in Unicode NFC form, ``.`` or
                ``..``, too long, has a disallowed character,
                or has upper case for a case-folding provider.
        """

        if (uid, provider) in self._accepted:
            return uid

        def refuse(why: str, code: str = "ERROR_INVALID_UID") -> InvalidUIDError:
            return InvalidUIDError(
                f"UID {uid!r} is not valid for {provider}: {why}.",
                uid=uid,
                provider=provider,
                code=code,
            )

        if not isinstance(uid, str) or uid == "":
            raise refuse("it is empty")
        if any(ch.isspace() for ch in uid):
            raise refuse("it contains white space", "ERROR_UID_WITH_SPACE")
        if unicodedata.normalize("NFC", uid) != uid:
            # "é" as e + combining accent and as one code point are two UIDs to us; a provider
            # (or a database collation) that normalises would merge them into one user.
            raise refuse("it is not in Unicode NFC form; normalise user ids before mapping")
        if uid in (".", ".."):
            # Quoted into a URL path these stay dot-segments, which URL normalisation removes:
            # /users/../token would reach another endpoint.
            raise refuse("it is a relative path segment")
        if len(uid) > self.max_length:
            raise refuse(f"it is {len(uid)} characters long, the limit is {self.max_length}")
        if self.folds_case and uid != uid.lower():
            raise refuse(
                f"{provider} lower-cases UIDs, so this one would merge with "
                f"{uid.lower()!r}; map users to lower-case UIDs"
            )
        if not self._compiled.fullmatch(uid):
            raise refuse(f"allowed characters are {self.description or self.pattern}")
        if self.extra_check is not None:
            problem = self.extra_check(uid)
            if problem:
                raise refuse(problem)
        if len(self._accepted) >= _ACCEPTED_MAX:
            self._accepted.clear()
        self._accepted[uid, provider] = None
        return uid


def import_string(path: str) -> Any:
    """Import ``"package.module:attr"`` or ``"package.module.attr"``.

    Raises:
        ConfigurationError: when the module or attribute cannot be found.
    """
    module_name, sep, attr = path.partition(":")
    if not sep:
        module_name, _, attr = path.rpartition(".")
    try:
        module = importlib.import_module(module_name)
        return getattr(module, attr)
    except (ImportError, AttributeError, ValueError, TypeError) as exc:
        # Neither the path nor the import error's words (which repeat it): the caller names
        # the setting, whose value may be a secret pasted into the wrong key.
        raise ConfigurationError(
            f"A dotted path cannot be imported ({type(exc).__name__}).", setting=None
        ) from exc


UIDSource = Callable[[Any], Any]


def _default_uid(user: Any) -> Any:
    """The app user's primary key, whichever framework's user object this is."""
    for attr in ("pk", "id"):  # Django, most ORMs
        value = getattr(user, attr, None)
        if value is not None:
            return value
    get_id = getattr(user, "get_id", None)  # Flask-Login
    if callable(get_id):
        return get_id()
    identity = getattr(user, "identity", None)  # Starlette's BaseUser
    if identity:
        return identity
    return getattr(user, "username", None)


def _resolve(source: str | Callable[[Any], Any] | None, setting: str) -> UIDSource | None:
    if source is None or callable(source):
        return source
    if "." in source or ":" in source:
        # The messages name the setting, not its value: a value in the wrong key may be a
        # secret pasted there by mistake.
        try:
            target = import_string(source)
        except ConfigurationError:
            raise ConfigurationError(
                f"{setting} is a dotted path that cannot be imported.", setting=setting
            ) from None
        if not callable(target):
            raise ConfigurationError(
                f"{setting} is a dotted path to something that is not callable.", setting=setting
            )
        result: UIDSource = target
        return result
    attr = source

    def read(user: Any) -> Any:
        value = getattr(user, attr, None)
        return value() if callable(value) else value

    return read


class IdentityMapper:
    """Turns an app user object into a :class:`ChatIdentity`.

    The default UID is ``uid_prefix`` + the user's primary key (Django ``pk``, ``id``,
    Flask-Login ``get_id()``, Starlette ``identity``), e.g. ``"user-42"``. A primary key never
    changes and never collides, unlike a username, which is why it is the default.

    Args:
        uid: attribute name (``"username"``), a dotted path to a callable, or a callable
            ``(user) -> str``; ``None`` for the default above. A user object with a
            ``chat_uid`` attribute always wins.
        uid_prefix: prepended to the default or attribute UID (not to a callable's result).
            Default ``"user-"`` (Matrix refuses all-digit localparts).
        name: attribute, dotted path or callable for the display name, or ``None``.
        avatar: attribute, dotted path or callable for the avatar URL, or ``None``.

    Raises:
        ConfigurationError: when a dotted path cannot be imported.
    """

    def __init__(
        self,
        uid: str | Callable[[Any], Any] | None = None,
        *,
        uid_prefix: str = "user-",
        name: str | Callable[[Any], Any] | None = None,
        avatar: str | Callable[[Any], Any] | None = None,
    ) -> None:
        self._uid_is_callable = uid is not None and (callable(uid) or "." in uid or ":" in uid)
        self._uid = _resolve(uid, "uid_mapper") or _default_uid
        self.uid_prefix = uid_prefix
        self._name = _resolve(name, "name_attribute")
        self._avatar = _resolve(avatar, "avatar_attribute")
        self._known: dict[tuple[str, str | None, str | None], ChatIdentity] = {}

    def __call__(self, user: Any) -> ChatIdentity:
        """Map ``user`` to a :class:`ChatIdentity` (not yet checked against provider rules).

        Raises:
            InvalidUIDError: ``ERROR_INVALID_UID`` when no UID can be derived.
        """
        explicit = getattr(user, "chat_uid", None)
        if explicit is not None:
            uid = str(explicit)
        else:
            raw = self._uid(user)
            if raw is None or str(raw) == "":
                raise InvalidUIDError(
                    "Could not derive a UID from the app user.", uid="", provider="-"
                )
            uid = str(raw) if self._uid_is_callable else f"{self.uid_prefix}{raw}"
        name = self._name(user) if self._name else None
        avatar = self._avatar(user) if self._avatar else None
        parts = (uid, str(name) if name else None, str(avatar) if avatar else None)
        # The same user maps to the same identity on every request: reuse the object (a
        # frozen dataclass costs more to make than to look up), bounded like UIDRules'.
        known = self._known.get(parts)
        if known is None:
            if len(self._known) >= _ACCEPTED_MAX:
                self._known.clear()
            known = self._known[parts] = ChatIdentity(*parts)
        return known
