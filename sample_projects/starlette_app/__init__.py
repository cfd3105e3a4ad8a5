"""A small Starlette app showing chatauth: log in, open the chat page, log out.

Run it from the repository root (no server, no network, no secret to paste)::

    python -m sample_projects.starlette_app --port 8000

It uses the JWT provider with a random per-run secret and a SQLite store in the temp
directory. Environment variables switch it over (read with
``chatauth.config.normalize_settings(os.environ, "CHATAUTH_")``)::

    CHATAUTH_PROVIDER=matrix CHATAUTH_MATRIX_HOMESERVER_URL=http://127.0.0.1:8008 \\
    CHATAUTH_MATRIX_JWT_SECRET=...   # or CHATAUTH_MATRIX_ADMIN_TOKEN=...
"""

from __future__ import annotations

from .app import DEMO_USERS, DemoUser, create_app

__all__ = ["DEMO_USERS", "DemoUser", "create_app"]
