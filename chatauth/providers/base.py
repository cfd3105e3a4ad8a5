"""The provider protocol every backend implements (DESIGN §3).

A provider never does I/O itself. :meth:`Provider.issue` and :meth:`Provider.revoke` return
*flows* (see :mod:`chatauth.http`): generators that yield ``httpx.Request`` objects and receive
the responses. Providers that mint tokens locally return without yielding.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any, ClassVar, Literal, Protocol, TypeVar, runtime_checkable

import httpx

from chatauth import settings as readers
from chatauth.errors import ChatAuthError, ProviderError, UnsupportedOperationError
from chatauth.http import Flow
from chatauth.identity import ChatIdentity, UIDRules
from chatauth.responses import ProviderEndpoint
from chatauth.settings import Setting
from chatauth.tokens import ChatToken

__all__ = [
    "BaseProvider",
    "Provider",
    "Revocation",
    "UserOperation",
    "error_from_response",
    "no_requests",
    "settings_table",
]

Revocation = Literal["token", "user", "none"]
T = TypeVar("T")
#: The chat-user operations of :mod:`chatauth.chat_users`: push the profile, deactivate, erase.
UserOperation = Literal["update", "deactivate", "erase"]


@runtime_checkable
class Provider(Protocol):
    """What chatauth needs from a chat provider backend.

    Attributes:
        name: short name, e.g. ``"matrix"``; also the ``provider`` in the token endpoint JSON.
        uid_rules: the provider's UID rules (:class:`~chatauth.identity.UIDRules`).
        revocation: what :meth:`revoke` destroys: ``"token"`` just that token, ``"user"``
            every token of the UID (Stream, Sendbird), ``"none"`` nothing (JWT, Twilio: tokens
            die at ``exp``).
        base_url: the provider's API root, or ``None`` for a provider with no server calls.
    """

    name: str
    uid_rules: UIDRules
    revocation: Revocation

    def issue(self, identity: ChatIdentity, ttl: timedelta) -> Flow[ChatToken]:
        """Ensure the chat user exists and create a token valid for about ``ttl``.

        The flow returns a :class:`~chatauth.tokens.ChatToken`.
        """
        ...

    def revoke(self, token: ChatToken) -> Flow[None]:
        """Destroy ``token`` (a :class:`~chatauth.tokens.ChatToken`) at the provider.

        A token the provider no longer knows counts as revoked (no error).
        """
        ...

    def client_config(self) -> dict[str, str]:
        """Public values the front-end SDK needs; never a secret."""
        ...

    def check(self) -> Flow[dict[str, str]]:
        """Reach the provider with the configured secret; returns facts for ``chatauth check``."""
        ...

    #: Which of ``"update"``, ``"deactivate"``, ``"erase"`` the provider has a documented
    #: call for; the others raise :class:`~chatauth.errors.UnsupportedOperationError`.
    user_operations: frozenset[UserOperation]

    def update_user(self, identity: ChatIdentity) -> Flow[None]:
        """Push ``identity.name`` and ``identity.avatar`` to the chat user's profile.

        A chat user the provider does not know is left alone (it gets the profile when it
        is created, at its first chat session).
        """
        ...

    def deactivate_user(self, identity: ChatIdentity) -> Flow[None]:
        """Deactivate the chat user at the provider: it can no longer connect or log in.

        A chat user the provider does not know counts as done.
        """
        ...

    def erase_user(self, identity: ChatIdentity) -> Flow[None]:
        """Delete the chat user at the provider for good, with its profile (GDPR erasure).

        A chat user the provider does not know counts as done.
        """
        ...


class BaseProvider:
    """Shared plumbing for provider classes: declared settings and a safe ``repr``.

    Subclasses set ``name``, ``uid_rules``, ``revocation``, and declare their settings once in
    ``settings_spec`` (:class:`~chatauth.settings.Setting`, keys ``<settings_prefix>_<name>``),
    from which ``settings_keys`` (the lower-case keys they read) is derived; and implement the
    flows. The default :meth:`from_settings` passes each declared key's raw value to the
    constructor under the setting's name, and the constructor checks them with
    :meth:`_declared`, so a provider built in code is checked like one built from settings.
    """

    name: ClassVar[str] = "base"
    uid_rules: UIDRules
    revocation: ClassVar[Revocation] = "none"
    settings_prefix: ClassVar[str] = ""
    settings_spec: ClassVar[tuple[Setting, ...]] = ()
    settings_keys: ClassVar[frozenset[str]] = frozenset()
    #: Extra endpoints the app must serve for this provider (ChatKitty's verify URL); every
    #: framework adapter mounts them under its chat prefix (:mod:`chatauth.responses`).
    endpoints: ClassVar[tuple[ProviderEndpoint, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "settings_keys" not in cls.__dict__:
            cls.settings_keys = frozenset(cls.setting_key(s.name) for s in cls.settings_spec)
        doc = cls.__dict__.get("__doc__")  # None under -OO, or for a class without one
        if cls.settings_spec and doc:
            cls.__doc__ = (
                doc.rstrip()
                + "\n\n    Settings (generated from ``settings_spec``):\n\n"
                + "\n".join("    " + line for line in settings_table(cls).splitlines())
            )

    @classmethod
    def setting_key(cls, name: str) -> str:
        """The lower-case settings key of the declared setting ``name``."""
        return f"{cls.settings_prefix}_{name}"

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> BaseProvider:
        """Build the provider from lower-case settings keys (see each provider's docs).

        Raises:
            ConfigurationError: a required key is missing or malformed.
        """
        given = {s.name: settings.get(cls.setting_key(s.name)) for s in cls.settings_spec}
        return cls(**given)

    @classmethod
    def _declared(cls, **given: Any) -> dict[str, Any]:
        """``given`` (constructor arguments by setting name) checked against the declarations
        by the core reader: name -> clean value, default, or ``None``.

        Raises:
            ConfigurationError: naming the setting's key (see
                :func:`chatauth.settings.read_setting`).
        """
        declared = {s.name: s for s in cls.settings_spec}
        values = {cls.setting_key(name): value for name, value in given.items()}
        return {
            name: readers.read_setting(values, cls.setting_key(name), declared[name])
            for name in given
        }

    def client_config(self) -> dict[str, str]:
        return {}

    def check(self) -> Flow[dict[str, str]]:
        return no_requests({"provider": self.name})

    def issue(self, identity: ChatIdentity, ttl: timedelta) -> Flow[ChatToken]:
        raise NotImplementedError

    def revoke(self, token: ChatToken) -> Flow[None]:
        raise NotImplementedError

    def undo_issue(self, token: ChatToken, error: BaseException) -> Flow[None]:
        """Revoke ``token``, which an issue flow minted before failing with ``error``.

        Yielded from an ``except`` block of the issue flow, which then re-raises ``error``
        (DESIGN §8: a flow that fails after minting a credential revokes it before raising).
        Never raises: if the revocation fails too, ``token`` is appended to
        ``error.unrevoked`` so that the service queues it for ``revoke-pending``.
        """
        try:
            yield from self.revoke(token)
        except Exception:
            if isinstance(error, ChatAuthError):
                error.unrevoked.append(token)
            else:  # pragma: no cover - flows raise ChatAuthErrors; kept loud if one does not
                raise

    def __repr__(self) -> str:
        # Never show settings: some of them are secrets.
        return f"<{type(self).__name__} {self.name!r}>"

    # -- chat-user operations (chatauth.chat_users) ---------------------------------------
    #: The operations a subclass implements; the default flows refuse the others.
    user_operations: frozenset[UserOperation] = frozenset()

    def unsupported(self, operation: UserOperation, why: str) -> UnsupportedOperationError:
        """The named refusal for ``operation``; ``why`` says what the provider lacks."""
        return UnsupportedOperationError(
            f"{self.name} cannot {operation} a chat user: {why}",
            provider=self.name,
            operation=operation,
        )

    def update_user(self, identity: ChatIdentity) -> Flow[None]:
        """Refused by default (see :attr:`user_operations`).

        Raises:
            UnsupportedOperationError: ``ERROR_UNSUPPORTED_OPERATION``.
        """
        raise self.unsupported("update", "it keeps no chat profile chatauth can write.")

    def deactivate_user(self, identity: ChatIdentity) -> Flow[None]:
        """Refused by default (see :attr:`user_operations`).

        Raises:
            UnsupportedOperationError: ``ERROR_UNSUPPORTED_OPERATION``.
        """
        raise self.unsupported("deactivate", "it documents no call to deactivate a user.")

    def erase_user(self, identity: ChatIdentity) -> Flow[None]:
        """Refused by default (see :attr:`user_operations`).

        Raises:
            UnsupportedOperationError: ``ERROR_UNSUPPORTED_OPERATION``.
        """
        raise self.unsupported("erase", "it documents no call to delete a user.")


def settings_table(cls: type[BaseProvider]) -> str:
    """An RST table of ``cls``'s declared settings: key, what it is, required or default,
    secret or not. Every provider's class docstring ends with it."""
    rows = []
    for declared in cls.settings_spec:
        notes = []
        if declared.required:
            notes.append("required")
        elif declared.default is not None:
            notes.append(f"default ``{declared.default}``")
        notes.append("secret" if declared.secret else "public")
        if declared.choices:
            notes.append("one of " + ", ".join(f"``{c}``" for c in declared.choices))
        text = declared.doc + (f" ({'; '.join(notes)})" if notes else "")
        rows.append((f"``{cls.setting_key(declared.name).upper()}``", text))
    width = max((len(key) for key, _ in rows), default=3)
    rule = "=" * width + " " + "=" * max((len(text) for _, text in rows), default=3)
    lines = [rule, *(f"{key.ljust(width)} {text}" for key, text in rows), rule]
    return "\n".join(lines)


def no_requests(value: T) -> Flow[T]:
    """A flow that makes no request and returns ``value`` (local minting, no-op revoke)."""
    return value
    yield  # pragma: no cover - makes this a generator


def error_from_response(provider: str, response: httpx.Response, code: str | None) -> ProviderError:
    """A :class:`ProviderError` for a refused call, with the provider's code and the status.

    The message names the method and the status but not the URL (some URLs carry a token).
    """
    return ProviderError(
        f"{provider} refused {response.request.method} with HTTP {response.status_code}"
        + (f" ({code})" if code else "")
        + ".",
        provider=provider,
        status=response.status_code,
        code=code or f"HTTP_{response.status_code}",
    )
