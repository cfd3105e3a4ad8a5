"""The chat blueprint: the token endpoint (DESIGN §5), the configured provider's own
endpoints, and the ``@chat_required`` decorator."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar, cast

from flask import Blueprint, Response, current_app, jsonify, request

from chatauth.assets import script_answer
from chatauth.bodies import RequestBody
from chatauth.errors import ChatAuthError
from chatauth.responses import (
    Answer,
    endpoint_answer,
    error_answer,
    refresh_answer,
    token_answer,
)
from chatauth.session import ChatSession

from .sessions import load_chat, refresh_chat
from .state import get_service

__all__ = ["BLUEPRINT_NAME", "chat_required", "json_answer", "make_blueprint"]

#: The blueprint's name: ``url_for("chatauth.token")`` is the token endpoint.
BLUEPRINT_NAME = "chatauth"
# As Flask-Login's login_required: CORS preflights carry no credentials and must pass.
EXEMPT_METHODS = frozenset({"OPTIONS"})
# The provider endpoint answers every method itself (405 for the wrong one).
METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]

F = TypeVar("F", bound=Callable[..., Any])


def json_answer(answer: Answer) -> Response:
    """A Flask response for a ``chatauth.responses`` answer (status, JSON body, headers)."""
    status, body, headers = answer
    response = jsonify(body)
    response.status_code = status
    response.headers.update(headers)
    return response


def chat_required(view: F) -> F:
    """Require a logged-in user with a working chat session, for JSON endpoints.

    Without a login the answer is ``401`` JSON (never a redirect: the caller is a script);
    with the provider down, ``503`` with ``Retry-After``; every error has ``Cache-Control:
    no-store`` and the body ``{"error": {"code", "message"}}`` (:mod:`chatauth.responses`).
    Inside the view, ``current_chat`` is the session. ``OPTIONS`` requests pass through.
    """

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if request.method not in EXEMPT_METHODS:
            try:
                load_chat(required=True)
            except ChatAuthError as exc:
                return json_answer(error_answer(exc))
        return current_app.ensure_sync(view)(*args, **kwargs)

    return cast(F, wrapper)


def _required_chat() -> ChatSession:
    chat = load_chat(required=True)
    assert chat is not None
    return chat


def token() -> Response:
    """``GET <prefix>/token``: the logged-in user's chat session as JSON (DESIGN §5).

    ``{"provider", "uid", "token", "expires_at", "client"}`` with ``Cache-Control:
    no-store``; 401 without a login, 503 + ``Retry-After`` when the provider is down.
    """
    return json_answer(token_answer(_required_chat))


def _body() -> RequestBody:
    return RequestBody(
        request.headers.get("Content-Type"),
        request.headers.get("Content-Length"),
        request.stream.read,  # read within the core's cap, never get_data()'s whole body
    )


def refresh() -> Response:
    """``POST <prefix>/token/refresh``: replace the token the chat SDK rejected
    (:func:`chatauth.responses.refresh_answer`); ``application/json`` only (415 otherwise)."""
    return json_answer(refresh_answer(_body(), refresh_chat))


def script() -> Response:
    """``GET <prefix>/chatauth.js``: the SDK glue module (:func:`chatauth.assets.script_answer`)."""
    status, body, headers = script_answer(request.headers.get("If-None-Match"))
    return Response(body, status=status, headers=headers)


def provider_endpoint(path: str) -> Response:
    """``<prefix>/<path>``: an endpoint the configured provider declares, answered by the core
    (:func:`chatauth.responses.endpoint_answer`); 404 where it declares none."""
    return json_answer(endpoint_answer(get_service(), path, request.method, _body()))


def make_blueprint() -> Blueprint:
    """A new ``chatauth`` blueprint with the chat endpoints (one per app, so each app's
    registration is independent)."""
    blueprint = Blueprint(BLUEPRINT_NAME, __name__)
    blueprint.add_url_rule("/token", view_func=token, methods=["GET"])
    blueprint.add_url_rule("/token/refresh", view_func=refresh, methods=["POST"])
    blueprint.add_url_rule("/chatauth.js", view_func=script, methods=["GET"])
    blueprint.add_url_rule("/<path:path>", view_func=provider_endpoint, methods=METHODS)
    return blueprint
