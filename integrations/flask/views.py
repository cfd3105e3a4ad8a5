"""The token endpoint (DESIGN §5) as a blueprint, and the ``@chat_required`` decorator."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any, TypeVar, cast

from flask import Blueprint, Response, current_app, jsonify, request

from chatauth.errors import ChatAuthError
from chatauth.responses import Answer, error_answer, session_answer

from .sessions import load_chat
from .state import get_service

__all__ = ["BLUEPRINT_NAME", "chat_required", "json_answer", "make_blueprint"]

logger = logging.getLogger("chatauth.integrations.flask")

#: The blueprint's name: ``url_for("chatauth.token")`` is the token endpoint.
BLUEPRINT_NAME = "chatauth"
# As Flask-Login's login_required: CORS preflights carry no credentials and must pass.
EXEMPT_METHODS = frozenset({"OPTIONS"})

F = TypeVar("F", bound=Callable[..., Any])


def json_answer(answer: Answer) -> Response:
    """A Flask response for a ``chatauth.responses`` answer (status, JSON body, headers)."""
    status, body, headers = answer
    response = jsonify(body)
    response.status_code = status
    response.headers.update(headers)
    return response


def _error(exc: ChatAuthError) -> Response:
    answer = error_answer(exc)
    if answer[0] >= 500:
        logger.warning("chatauth token endpoint answered %d: %s", answer[0], exc)
    return json_answer(answer)


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
                return _error(exc)
        return current_app.ensure_sync(view)(*args, **kwargs)

    return cast(F, wrapper)


def token() -> Response:
    """``GET <prefix>/token``: the logged-in user's chat session as JSON (DESIGN §5).

    ``{"provider", "uid", "token", "expires_at", "client"}`` with ``Cache-Control:
    no-store``; 401 without a login, 503 + ``Retry-After`` when the provider is down.
    """
    try:
        chat = load_chat(required=True)
    except ChatAuthError as exc:
        return _error(exc)
    assert chat is not None
    response = json_answer(session_answer(chat))
    # The answer depends on the session cookie: no shared cache may key it on the URL alone.
    response.vary.add("Cookie")
    return response


def chatkitty_verify() -> Response:
    """``POST <prefix>/chatkitty/verify``: ChatKitty's "User Attempted Start Session" chat
    function asks whether ``{"username", "authParams"}`` may start a session.

    Answered by :func:`chatauth.providers.chatkitty.verify_auth_params` (200 allow, 403 deny);
    404 unless the provider is ChatKitty. The caller is ChatKitty's server, not a browser: the
    signed params are the credential, no app login is involved.
    """
    service = get_service()
    if service.provider.name != "chatkitty":
        return json_answer((404, {"error": {"code": "ERROR_NOT_FOUND"}}, {}))
    from chatauth.providers.chatkitty import verify_auth_params

    payload = request.get_json(silent=True)
    if not isinstance(payload, dict):
        message = {"code": "ERROR_BAD_REQUEST", "message": "Expected a JSON object."}
        return json_answer((400, {"error": message}, {}))
    return json_answer(verify_auth_params(service, payload))


def make_blueprint() -> Blueprint:
    """A new ``chatauth`` blueprint with the token endpoint (one per app, so each app's
    registration is independent)."""
    blueprint = Blueprint(BLUEPRINT_NAME, __name__)
    blueprint.add_url_rule("/token", view_func=token, methods=["GET"])
    blueprint.add_url_rule("/chatkitty/verify", view_func=chatkitty_verify, methods=["POST"])
    return blueprint
