"""The token endpoint (DESIGN §5) and helpers for views that need a chat session.

``path("chat/", include("chatauth.integrations.django.urls"))`` serves ``GET chat/token``:
login required (an anonymous request gets a 401 JSON error, not a login redirect: it is an
API for the front end's chat SDK), and the answers of :mod:`chatauth.responses` (the same
status, body and headers as the Flask and Starlette adapters give).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from asgiref.sync import iscoroutinefunction
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse, HttpResponseNotModified
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from chatauth.assets import script_answer
from chatauth.bodies import RequestBody
from chatauth.errors import ChatAuthError, NotAuthenticatedError
from chatauth.responses import endpoint_answer, refresh_answer, token_answer
from chatauth.session import ChatSession

from .conf import get_service
from .middleware import (
    aget_chat,
    binding,
    error_response,
    get_chat,
    json_response,
    request_user,
)

__all__ = ["ChatRequiredMixin", "chat_required", "provider_endpoint", "refresh", "script", "token"]


def _login_not_required(view_func: Any) -> Any:
    """Exempt from Django 5.1's ``LoginRequiredMiddleware``: the view answers 401 itself."""
    from django.contrib.auth import decorators

    exempt = getattr(decorators, "login_not_required", None)  # Django >= 5.1
    return exempt(view_func) if exempt is not None else view_func


@_login_not_required
@require_GET
def token(request: HttpRequest) -> HttpResponse:
    """``GET <prefix>/token``: the logged-in user's chat session as JSON.

    200 ``{"provider", "uid", "token", "expires_at", "client"}``; 401 without a login; 503
    with ``Retry-After`` when the provider or the store is down; 502 when the provider
    refuses; always ``Cache-Control: no-store`` and ``Vary: Cookie``
    (:func:`chatauth.responses.token_answer`). The token is the one of this request's user
    and app session only.
    """
    return json_response(token_answer(lambda: get_chat(request)))


def _body(request: HttpRequest) -> RequestBody:
    return RequestBody(
        request.META.get("CONTENT_TYPE"),
        request.META.get("CONTENT_LENGTH") or None,
        request.read,  # read within the core's cap; request.body would read it all
    )


@_login_not_required
@csrf_exempt
@require_POST
def refresh(request: HttpRequest) -> HttpResponse:
    """``POST <prefix>/token/refresh``: replace the token the chat SDK rejected
    (:func:`chatauth.responses.refresh_answer`): ``{"token": "..."}`` as ``application/json``
    (415 otherwise, which is what keeps a cross-site form out, hence no CSRF token); the
    answer is the token endpoint's."""

    def replace(rejected: str) -> ChatSession:
        return binding(request).refresh(functools.partial(request_user, request), rejected)

    return json_response(refresh_answer(_body(request), replace))


@_login_not_required
@require_GET
def script(request: HttpRequest) -> HttpResponse:
    """``GET <prefix>/chatauth.js``: the SDK glue module (:func:`chatauth.assets.script_answer`)."""
    status, body, headers = script_answer(request.headers.get("If-None-Match"))
    if status == 304:  # no Content-Type on a 304, as the other adapters send it
        response: HttpResponse = HttpResponseNotModified(headers=headers)
        return response
    return HttpResponse(body, status=status, headers=headers)


@_login_not_required
@csrf_exempt
def provider_endpoint(request: HttpRequest, path: str) -> HttpResponse:
    """``<prefix>/<path>``: an endpoint the configured provider declares, answered by the core
    (:func:`chatauth.responses.endpoint_answer`); 404 where it declares none. The caller is
    the provider's server, not a browser (so no CSRF token and no app login): the handler
    checks its own credential."""
    return json_response(endpoint_answer(get_service(), path, request.method or "", _body(request)))


ViewFunc = Callable[..., Any]


def chat_required(
    view_func: ViewFunc | None = None,
    *,
    login_url: str | None = None,
    redirect_field_name: str = "next",
) -> Any:
    """Decorate a view that needs a chat session; sync and async views alike.

    An anonymous user is sent to the login page (like ``login_required``); then the chat
    session is fetched before the view runs, so ``request.chat`` is ready (in async views,
    ``await request.achat()`` returns it at once). If the provider or the store fails, the
    view is not called and the JSON error answer is returned (503 with ``Retry-After`` ...).

    Usable bare (``@chat_required``) or with arguments (``@chat_required(login_url=...)``).
    """

    def decorate(view: ViewFunc) -> ViewFunc:
        if iscoroutinefunction(view):

            @functools.wraps(view)
            async def async_wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
                try:
                    await aget_chat(request)
                except NotAuthenticatedError:
                    return redirect_to_login(
                        request.get_full_path(), login_url, redirect_field_name
                    )
                except ChatAuthError as exc:
                    return error_response(exc)
                return await view(request, *args, **kwargs)

            return async_wrapper

        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
            try:
                get_chat(request)
            except NotAuthenticatedError:
                return redirect_to_login(request.get_full_path(), login_url, redirect_field_name)
            except ChatAuthError as exc:
                return error_response(exc)
            return view(request, *args, **kwargs)

        return wrapper

    return decorate(view_func) if view_func is not None else decorate


class ChatRequiredMixin:
    """Class-based view twin of :func:`chat_required` (put it first among the bases).

    Attributes ``login_url`` and ``redirect_field_name`` work as in ``LoginRequiredMixin``.
    """

    login_url: str | None = None
    redirect_field_name = "next"

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            get_chat(request)
        except NotAuthenticatedError:
            return redirect_to_login(
                request.get_full_path(), self.login_url, self.redirect_field_name
            )
        except ChatAuthError as exc:
            return error_response(exc)
        response: HttpResponse = super().dispatch(request, *args, **kwargs)  # type: ignore[misc]
        return response
