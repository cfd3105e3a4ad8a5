"""What a request sees: :class:`ChatSession`."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import timezone
from typing import Any

from chatauth.identity import ChatIdentity
from chatauth.json_body import JSONBody
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
    # The token endpoint's body, made on first use: a session served from the process's
    # cache (chatauth.hits) answers every request with the same body, encoded once.
    _body: JSONBody | None = dataclasses.field(default=None, init=False, repr=False, compare=False)

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
        own token endpoint. The same :class:`~chatauth.json_body.JSONBody` is returned on
        every call (its JSON bytes are encoded once): do not change it.
        """
        body = self._body
        if body is None:
            expires = self.token.expires_at
            body = JSONBody(
                provider=self.token.provider,
                uid=self.identity.uid,
                token=self.token.value,
                expires_at=(
                    expires.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
                    if expires
                    else None
                ),
                client=dict(self.client),
            )
            object.__setattr__(self, "_body", body)
        return body
