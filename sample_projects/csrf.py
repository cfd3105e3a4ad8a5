"""CSRF protection for the Flask and Starlette samples' own forms: log in and log out.

Without it, any site can make a visitor's browser POST to ``/logout`` (ending their sessions)
or to ``/login`` with the attacker's credentials (login CSRF: the visitor then chats as the
attacker). Django's sample uses Django's own ``CsrfViewMiddleware``; these two use the scheme
of Flask-WTF's ``csrf`` module, with itsdangerous:

* a random token per app session, kept in the session (which is signed by the framework);
* every form carries it, signed and timestamped, in the hidden field ``csrf_token``;
* a POST is accepted only when that field is validly signed, younger than ``max_age``
  seconds, and carries the session's token (compared in constant time). Anything else is
  refused with 403 before the form is looked at.

``SameSite=Lax`` on the session cookie (Flask: set by the sample; Starlette's
``SessionMiddleware``: its default) already keeps the cookie off cross-site POSTs in current
browsers; the token also covers older browsers and same-site attackers (a sibling subdomain).
"""

from __future__ import annotations

import hmac
import html
import re
import secrets
from collections.abc import MutableMapping
from typing import Any

from itsdangerous import BadData, URLSafeTimedSerializer

__all__ = ["FIELD", "CSRFTokens", "token_in"]

#: The hidden form field.
FIELD = "csrf_token"
#: Where the per-session token lives in the app session.
SESSION_KEY = "_csrf"
#: A form is good for this long (seconds); then the page must be reloaded.
MAX_AGE = 2 * 3600


class CSRFTokens:
    """Issues and checks the signed per-session tokens of one app.

    Args:
        secret_key: the app's secret (Flask ``SECRET_KEY``, the Starlette session secret);
            salted, so a token is never valid as anything else signed with the same key.
        max_age: seconds a form's token stays valid.
    """

    def __init__(self, secret_key: str | bytes, *, max_age: int = MAX_AGE) -> None:
        self._serializer = URLSafeTimedSerializer(secret_key, salt="chatauth-sample-csrf")
        self.max_age = max_age

    def __repr__(self) -> str:
        return "<CSRFTokens>"

    def issue(self, session: MutableMapping[str, Any]) -> str:
        """The signed token for a form, creating the session's token on first use."""
        raw = session.get(SESSION_KEY)
        if not isinstance(raw, str):
            raw = secrets.token_urlsafe(32)
            session[SESSION_KEY] = raw
        return str(self._serializer.dumps(raw))

    def hidden_field(self, session: MutableMapping[str, Any]) -> str:
        """``<input type="hidden" name="csrf_token" value="...">`` for a form."""
        return f'<input type="hidden" name="{FIELD}" value="{html.escape(self.issue(session))}">'

    def is_valid(self, session: MutableMapping[str, Any], submitted: object) -> bool:
        """Whether ``submitted`` (the form's field) is a fresh, validly signed token of this
        session."""
        expected = session.get(SESSION_KEY)
        if not isinstance(expected, str) or not isinstance(submitted, str) or not submitted:
            return False
        try:
            raw = self._serializer.loads(submitted, max_age=self.max_age)
        except BadData:
            return False
        return isinstance(raw, str) and hmac.compare_digest(raw.encode(), expected.encode())


def token_in(page: str) -> str:
    """The ``csrf_token`` field's value in an HTML page (for clients that are not browsers:
    tests, scripts).

    Raises:
        LookupError: the page has no such field.
    """
    match = re.search(rf'name="?{FIELD}"? value="([^"]+)"', page)
    if match is None:
        raise LookupError("no csrf_token field on the page")
    return html.unescape(match.group(1))
