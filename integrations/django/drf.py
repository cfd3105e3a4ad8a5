"""Django REST framework: the chat token endpoints and a permission, for any authentication.

::

    # urls.py
    path("api/chat/", include("chatauth.integrations.django.drf")),
    # GET api/chat/token, POST api/chat/token/refresh

    # a view of yours that needs the chat session
    class Inbox(APIView):
        permission_classes = [IsAuthenticated, HasChatSession]
        def get(self, request):
            return Response({"uid": request.chat.uid})

The views use the project's ``DEFAULT_AUTHENTICATION_CLASSES`` (or the ``authentication_classes``
you give ``as_view``): ``TokenAuthentication``, SimpleJWT's ``JWTAuthentication``, allauth's
``XSessionTokenAuthentication``, ``SessionAuthentication``, your own. The chat session is bound
to the credential the client authenticated with (:mod:`.api`), not to a cookie, and ends when
that credential ends. Answers are the core's (:mod:`chatauth.responses`), the same as the
browser endpoints': 401 JSON without a user (no permission class is needed for that), 503 with
``Retry-After``, 429 past the refresh limit.
"""

from __future__ import annotations

from typing import Any

try:
    from rest_framework.exceptions import APIException
    from rest_framework.permissions import BasePermission
    from rest_framework.request import Request
    from rest_framework.views import APIView
except ImportError as exc:  # pragma: no cover - depends on installed extras
    raise ImportError(
        "chatauth.integrations.django.drf needs Django REST framework: "
        "pip install djangorestframework"
    ) from exc
from django.http import HttpResponse
from django.urls import path

from chatauth.errors import ChatAuthError
from chatauth.responses import error_answer, refresh_answer, token_answer
from chatauth.session import ChatSession

from .api import api_binding
from .middleware import json_response, unwrap_user
from .views import _body

__all__ = [
    "ChatAPIError",
    "ChatTokenRefreshView",
    "ChatTokenView",
    "HasChatSession",
    "get_chat",
    "urlpatterns",
]


def get_chat(request: Request) -> ChatSession:
    """The chat session of the API client making ``request`` (decided once per request).

    Raises:
        NotAuthenticatedError: no authenticated user. The core's other errors.
    """
    return api_binding(request._request, request.auth).get(lambda: unwrap_user(request.user))


class ChatTokenView(APIView):
    """``GET``: the client's chat session, the body of DESIGN §5 (``{"provider", "uid",
    "token", "expires_at", "client"}``), or the core's error answer."""

    # The core answers 401 itself, with the same body as every chatauth endpoint.
    permission_classes = ()

    def get(self, request: Request) -> HttpResponse:
        return json_response(token_answer(lambda: get_chat(request)))


class ChatTokenRefreshView(APIView):
    """``POST`` ``{"token": "<the rejected token>"}`` as ``application/json``: replace the
    token the chat SDK rejected (:func:`chatauth.responses.refresh_answer`)."""

    permission_classes = ()

    def post(self, request: Request) -> HttpResponse:
        def replace(rejected: str) -> ChatSession:
            chat = api_binding(request._request, request.auth)
            return chat.refresh(lambda: unwrap_user(request.user), rejected)

        return json_response(refresh_answer(_body(request._request), replace))


class ChatAPIError(APIException):
    """A chatauth error raised in a REST framework view: its status (401, 503, ...), the body
    ``{"code", "message"}``, and ``Retry-After`` (REST framework's handler sends ``wait``)."""

    def __init__(self, error: ChatAuthError) -> None:
        status, body, headers = error_answer(error)
        super().__init__(detail=body["error"])
        self.status_code = status
        retry = headers.get("Retry-After")
        self.wait = int(retry) if retry else None


class HasChatSession(BasePermission):
    """Lets the request through once its chat session is ready, as ``request.chat``.

    Raises:
        ChatAPIError: the session cannot be had (401 without a user, 503 with
            ``Retry-After`` when the provider or the store is down, ...).
    """

    def has_permission(self, request: Request, view: Any) -> bool:
        try:
            request.chat = get_chat(request)  # type: ignore[attr-defined]
        except ChatAuthError as exc:
            raise ChatAPIError(exc) from exc
        return True


#: ``path("api/chat/", include("chatauth.integrations.django.drf"))``.
app_name = "chatauth-api"
urlpatterns = [
    path("token", ChatTokenView.as_view(), name="token"),
    path("token/refresh", ChatTokenRefreshView.as_view(), name="refresh"),
]
