"""Chat sessions of API clients in Django: bound to their credential, ended with it.

Shared by the REST framework views (:mod:`.drf`) and the django-ninja router (:mod:`.ninja`);
the rules are the core's (:mod:`chatauth.credentials`). This module only says what the
credential of a request is and which signal means it ended:

============================================  ============================================
``request.auth`` / header                     credential
============================================  ============================================
a Django session (allauth headless             its session key (the ``X-Session-Token``)
``XSessionTokenAuthentication``)
an object with a ``key`` (REST framework       the key
``Token``, knox-style tokens)
a SimpleJWT token carrying                     that claim: the id of the refresh token family
:data:`CHAT_SESSION_CLAIM`                     (:class:`~.simplejwt.ChatTokenObtainPairSerializer`)
a non-empty string                             the string
none of these, with an ``X-Session-Token`` or  the header's token
``Authorization: <scheme> <token>`` header
none (``SessionAuthentication``, a cookie)     the cookie session, as a browser
============================================  ============================================

Ended by (receivers connected when the app is installed): a REST framework ``Token`` deleted
(``post_delete``); a SimpleJWT ``BlacklistedToken`` created (the refresh token logged out; with
``BLACKLIST_AFTER_ROTATION`` every rotation blacklists the old refresh token too, so the
family's chat token is replaced at each rotation); Django's ``user_logged_out`` for a request
carrying an ``X-Session-Token`` (allauth headless logout).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.contrib.sessions.backends.base import SessionBase
from django.db import transaction
from django.http import HttpRequest

from chatauth.binding import ChatBinding
from chatauth.credentials import (
    credential_session_id,
    end_credential_session,
    header_credential,
)
from chatauth.errors import ChatAuthError

from .conf import get_service
from .middleware import binding

__all__ = [
    "CHAT_SESSION_CLAIM",
    "api_binding",
    "credential_of",
    "end_credential",
]

logger = logging.getLogger("chatauth.django")

#: The JWT claim naming a SimpleJWT refresh token family: set to the first refresh token's
#: ``jti`` by :class:`~.simplejwt.ChatTokenObtainPairSerializer`, copied by SimpleJWT into every
#: access token made from it and kept across rotations.
CHAT_SESSION_CLAIM = "chatauth_sid"
_BINDING_ATTR = "_chatauth_api"


def credential_of(request: HttpRequest, auth: Any) -> str | None:
    """The credential ``request`` authenticated with (see the module docstring's table), or
    ``None`` for a cookie session."""
    if isinstance(auth, SessionBase):
        return auth.session_key or None
    key = getattr(auth, "key", None)
    if isinstance(key, str) and key:
        return key
    payload = getattr(auth, "payload", None)
    if isinstance(payload, Mapping):
        family = payload.get(CHAT_SESSION_CLAIM)
        if isinstance(family, str) and family:
            return family
    if isinstance(auth, str) and auth:
        return auth
    return header_credential(request.headers.get)


def _secret() -> str:
    return str(settings.SECRET_KEY)


def api_binding(request: HttpRequest, auth: Any) -> ChatBinding:
    """The chat session binding of an API request (made once per request): bound to its
    credential, or to the cookie session when it has none (``SessionAuthentication``).

    Args:
        request: Django's request (a REST framework ``Request``'s ``_request``).
        auth: what the authentication class returned as ``request.auth``.
    """
    found: ChatBinding | None = getattr(request, _BINDING_ATTR, None)
    if found is None:
        credential = credential_of(request, auth)
        if credential is None:
            found = binding(request)
        else:
            found = ChatBinding(
                get_service(), None, app_session=credential_session_id(credential, _secret())
            )
        setattr(request, _BINDING_ATTR, found)
    return found


def end_credential(user: Any, credential: str, *, using: str | None = None) -> None:
    """End the chat session bound to ``credential`` once the current transaction commits
    (the credential's row is gone for good then). Never raises: a failure is logged, and a
    store outage is journaled by the core."""
    service = get_service()
    try:
        identity = service.identity_for(user)
    except ChatAuthError as exc:
        logger.warning("chatauth could not map the user of an ended credential (%s)", exc.code)
        return

    def end() -> None:
        try:
            end_credential_session(service, identity, credential, _secret())
        except ChatAuthError as exc:
            logger.warning("chatauth could not end an API client's chat session (%s)", exc.code)

    transaction.on_commit(end, using=using)


# -- receivers ----------------------------------------------------------------------------------
def end_chat_on_token_delete(sender: Any, instance: Any, **kwargs: Any) -> None:
    """``post_delete`` of REST framework's ``Token``: its chat session ends with it."""
    user = getattr(instance, "user", None)
    if user is not None and instance.key:
        end_credential(user, instance.key, using=kwargs.get("using"))


def end_chat_on_blacklist(sender: Any, instance: Any, created: bool = False, **kwargs: Any) -> None:
    """``post_save`` of SimpleJWT's ``BlacklistedToken``: the refresh token's family ends."""
    if not created:
        return
    import jwt

    outstanding = instance.token
    user = outstanding.user
    if user is None:
        return
    try:
        # Our own row: read the claim, not verify the signature (it may have expired).
        claims = jwt.decode(outstanding.token, options={"verify_signature": False})
    except jwt.PyJWTError:
        claims = {}
    # The first refresh token of a family is recorded before the login serializer adds the
    # claim: its own jti is the family id. Rotated ones are recorded with the claim.
    family = claims.get(CHAT_SESSION_CLAIM) or outstanding.jti
    if isinstance(family, str) and family:
        end_credential(user, family, using=kwargs.get("using"))


def end_chat_on_session_token_logout(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    """``user_logged_out`` with an ``X-Session-Token`` (allauth headless app logout): the chat
    session bound to that token ends (the cookie one, if any, is ended by
    :func:`~.signals.end_chat_on_logout`)."""
    token = request.headers.get("X-Session-Token") if request is not None else None
    if token and user is not None:
        end_credential(user, token)


def connect() -> None:
    """Connect the receivers of the credential apps that are installed."""
    from django.apps import apps
    from django.contrib.auth.signals import user_logged_out
    from django.db.models.signals import post_delete, post_save

    if apps.is_installed("rest_framework.authtoken"):
        from rest_framework.authtoken.models import Token

        post_delete.connect(end_chat_on_token_delete, sender=Token, dispatch_uid="chatauth.drf")
    if apps.is_installed("rest_framework_simplejwt.token_blacklist"):
        from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken

        post_save.connect(
            end_chat_on_blacklist, sender=BlacklistedToken, dispatch_uid="chatauth.simplejwt"
        )
    user_logged_out.connect(
        end_chat_on_session_token_logout, dispatch_uid="chatauth.session_token_logout"
    )
