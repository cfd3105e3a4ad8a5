"""Provider backends, one module each, and the registry of their short names."""

from __future__ import annotations

from chatauth.errors import ConfigurationError
from chatauth.identity import import_string
from chatauth.providers.base import BaseProvider, Provider

__all__ = ["PROVIDERS", "BaseProvider", "Provider", "provider_class"]

#: Short names accepted by the ``PROVIDER`` setting -> "module:Class". Imported lazily so
#: that a provider's optional dependencies are only needed when it is used.
PROVIDERS: dict[str, str] = {
    "jwt": "chatauth.providers.jwt:JWTProvider",
    "matrix": "chatauth.providers.matrix:MatrixProvider",
    "cometchat": "chatauth.providers.cometchat:CometChatProvider",
    "cometchat_calls": "chatauth.providers.cometchat:CometChatCallsProvider",
    "chatkitty": "chatauth.providers.chatkitty:ChatKittyProvider",
    "chatcamp": "chatauth.providers.chatcamp:ChatCampProvider",
    "stream": "chatauth.providers.stream:StreamProvider",
    "sendbird": "chatauth.providers.sendbird:SendbirdProvider",
    "twilio": "chatauth.providers.twilio:TwilioProvider",
}


def provider_class(name: str) -> type[BaseProvider]:
    """The provider class for a short name (``"matrix"``) or a dotted path.

    Raises:
        ConfigurationError: unknown name or unimportable path.
    """
    path = PROVIDERS.get(name.lower())
    if path is None and "." not in name and ":" not in name:
        # The value is not repeated: a secret pasted into the wrong variable must not be
        # printed by the error that catches the mistake.
        raise ConfigurationError(
            f"PROVIDER is not a known provider; choose one of {', '.join(sorted(PROVIDERS))} "
            "or give a dotted path to a provider class.",
            setting="PROVIDER",
        )
    try:
        cls = import_string(path or name)
    except ConfigurationError:
        raise ConfigurationError(
            "PROVIDER's dotted path cannot be imported.", setting="PROVIDER"
        ) from None
    if not (isinstance(cls, type) and issubclass(cls, BaseProvider)):
        raise ConfigurationError(
            "PROVIDER's dotted path names something that is not a provider class.",
            setting="PROVIDER",
        )
    return cls
