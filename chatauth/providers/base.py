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

from chatauth.errors import (
    ChatAuthError,
    ConfigurationError,
    ProviderError,
    UnsupportedOperationError,
)
from chatauth.http import Flow
from chatauth.identity import ChatIdentity, UIDRules
from chatauth.responses import ProviderEndpoint
from chatauth.tokens import ChatToken

__all__ = [
    "BaseProvider",
    "Provider",
    "Revocation",
    "UserOperation",
    "error_from_response",
    "no_requests",
    "require_setting",
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
    """Shared plumbing for provider classes: settings parsing and a safe ``repr``.

    Subclasses set ``name``, ``uid_rules``, ``revocation`` and ``settings_keys`` (the
    lower-case setting names they read), and implement the flows.
    """

    name: ClassVar[str] = "base"
    uid_rules: UIDRules
    revocation: ClassVar[Revocation] = "none"
    settings_keys: ClassVar[frozenset[str]] = frozenset()
    #: Extra endpoints the app must serve for this provider (ChatKitty's verify URL); every
    #: framework adapter mounts them under its chat prefix (:mod:`chatauth.responses`).
    endpoints: ClassVar[tuple[ProviderEndpoint, ...]] = ()

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> BaseProvider:
        """Build the provider from lower-case settings keys (see each provider's docs).

        Raises:
            ConfigurationError: a required key is missing or malformed.
        """
        raise NotImplementedError

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


def no_requests(value: T) -> Flow[T]:
    """A flow that makes no request and returns ``value`` (local minting, no-op revoke)."""
    return value
    yield  # pragma: no cover - makes this a generator


def require_setting(settings: Mapping[str, Any], key: str, *, secret: bool = False) -> Any:
    """Read a required setting.

    Raises:
        ConfigurationError: ``ERROR_API_KEY_NOT_FOUND`` for a missing secret, ``ERROR_CONFIG``
            for another missing key. The message names the key, never a value.
    """
    value = settings.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        raise ConfigurationError(
            f"The setting {key.upper()!r} is required.",
            setting=key.upper(),
            code="ERROR_API_KEY_NOT_FOUND" if secret else "ERROR_CONFIG",
        )
    return value


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
