"""A database router sending chatauth's tables to a database of their own (the PostgreSQL
tests route them there; everything else stays on ``default``)."""

from __future__ import annotations

from typing import Any


class ChatAuthRouter:
    alias = "chatauth_pg"

    def _route(self, model: type[Any], **hints: Any) -> str | None:
        return self.alias if model._meta.app_label == "chatauth" else None

    db_for_read = _route
    db_for_write = _route

    def allow_migrate(self, db: str, app_label: str, **hints: Any) -> bool | None:
        if app_label == "chatauth":
            return db == self.alias
        return None if db != self.alias else False
