"""SimpleJWT: name the refresh token family, so that its API clients have one chat session.

``SIMPLE_JWT = {"TOKEN_OBTAIN_SERIALIZER":
"chatauth.integrations.django.simplejwt.ChatTokenObtainPairSerializer"}``; the chat session
then ends when the family's refresh token is blacklisted (:mod:`.api`).
"""

from __future__ import annotations

from typing import Any

try:
    from rest_framework_simplejwt.serializers import TokenObtainPairSerializer
except ImportError as exc:  # pragma: no cover - depends on installed extras
    raise ImportError(
        "chatauth.integrations.django.simplejwt needs SimpleJWT: "
        "pip install djangorestframework-simplejwt"
    ) from exc

from .api import CHAT_SESSION_CLAIM

__all__ = ["ChatTokenObtainPairSerializer"]


class ChatTokenObtainPairSerializer(TokenObtainPairSerializer):
    """SimpleJWT's login serializer, naming the refresh token family in
    :data:`~.api.CHAT_SESSION_CLAIM` (the first refresh token's ``jti``): SimpleJWT copies it
    into every access token made from the refresh token and keeps it across rotations, so the
    family has one chat session, which ends when its refresh token is blacklisted."""

    @classmethod
    def get_token(cls, user: Any) -> Any:
        token = super().get_token(user)
        token[CHAT_SESSION_CLAIM] = token["jti"]
        return token
