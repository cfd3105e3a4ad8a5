"""django-ninja: a router with the chat token endpoints, for any ninja authentication.

::

    from chatauth.integrations.django.ninja import chat_router

    api = NinjaAPI()
    api.add_router("/chat/", chat_router(auth=[TokenAuth()]))
    # GET /api/chat/token, POST /api/chat/token/refresh

The chat session is bound to the credential the client authenticated with (:mod:`.api`): what
the auth returned when it is a token object or string, else the ``X-Session-Token`` or
``Authorization`` header's token (so a REST framework token, an allauth session token and the
same token seen by :mod:`.drf` name one chat session); it ends with that credential. The user
is what the auth returned when it is a user, its ``user`` when it has one, else
``request.user``. Answers are the core's (:mod:`chatauth.responses`).
"""

from __future__ import annotations

from typing import Any

try:
    from ninja import Router
    from ninja.constants import NOT_SET
except ImportError as exc:  # pragma: no cover - depends on installed extras
    raise ImportError(
        "chatauth.integrations.django.ninja needs django-ninja: pip install django-ninja"
    ) from exc
from django.http import HttpRequest, HttpResponse

from chatauth.responses import refresh_answer, token_answer
from chatauth.session import ChatSession

from .api import api_binding
from .middleware import json_response, request_user
from .views import _body

__all__ = ["chat_router", "get_chat", "user_of"]


def user_of(request: HttpRequest) -> Any:
    """The user of a ninja request: ``request.auth`` if it is a user, its ``user`` attribute
    if it has one (a token row), else ``request.user``."""
    auth = getattr(request, "auth", None)
    if hasattr(auth, "is_authenticated"):
        return auth
    owner = getattr(auth, "user", None)
    if owner is not None:
        return owner
    return request_user(request)


def get_chat(request: HttpRequest) -> ChatSession:
    """The chat session of the API client making ``request`` (decided once per request).

    Raises:
        NotAuthenticatedError: no authenticated user. The core's other errors.
    """
    auth = getattr(request, "auth", None)
    return api_binding(request, auth).get(lambda: user_of(request))


def chat_router(*, auth: Any = NOT_SET, tags: list[str] | None = None) -> Router:
    """A new ninja ``Router`` with ``GET token`` and ``POST token/refresh``.

    Args:
        auth: the router's authentication (ninja's ``auth=``); default the API's.
        tags: OpenAPI tags (default ``["chat"]``).
    """
    router = Router(auth=auth, tags=tags or ["chat"])

    @router.get("/token", summary="The chat token of the authenticated client")
    def token(request: HttpRequest) -> HttpResponse:
        return json_response(token_answer(lambda: get_chat(request)))

    @router.post("/token/refresh", summary="Replace the chat token the chat SDK rejected")
    def refresh(request: HttpRequest) -> HttpResponse:
        def replace(rejected: str) -> ChatSession:
            chat = api_binding(request, getattr(request, "auth", None))
            return chat.refresh(lambda: user_of(request), rejected)

        return json_response(refresh_answer(_body(request), replace))

    return router
