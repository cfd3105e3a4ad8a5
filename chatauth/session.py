"""What a request sees: :class:`ChatSession`."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import timezone
from typing import Any

from chatauth.identity import ChatIdentity
from chatauth.tokens import ChatToken

__all__ = ["ChatSession"]


@dataclasses.dataclass(frozen=True)
class ChatSession:
    """The logged-in user's chat session: identity, token and public client config.

    Attributes:
        identity: the chat identity the token was issued for.
        token: the chat token (its ``repr`` redacts the value).
        client: public values the provider's front-end SDK needs (app id, region,
            homeserver URL, device id, ...). Never a secret.
    """

    identity: ChatIdentity
    token: ChatToken
    client: Mapping[str, str]

    @property
    def uid(self) -> str:
        return self.identity.uid

    @property
    def provider(self) -> str:
        return self.token.provider

    def to_json(self) -> dict[str, Any]:
        """The token endpoint's body (DESIGN §5)::

            {"provider": "matrix", "uid": "user-42", "token": "...",
             "expires_at": "2026-11-22T18:00:00Z" | null, "client": {...}}

        This is the only place a token value leaves chatauth, and it goes only to the owner's
        own token endpoint.
        """
        expires = self.token.expires_at
        return {
            "provider": self.token.provider,
            "uid": self.identity.uid,
            "token": self.token.value,
            "expires_at": (
                expires.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ") if expires else None
            ),
            "client": dict(self.client),
        }
