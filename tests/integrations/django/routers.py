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


class EverythingRouter:
    """Every model (auth users, content types, chatauth) on one PostgreSQL alias: the app's
    whole database is PostgreSQL, as in production."""

    alias = "everything_pg"

    def db_for_read(self, model: type[Any], **hints: Any) -> str:
        return self.alias

    db_for_write = db_for_read

    def allow_relation(self, obj1: Any, obj2: Any, **hints: Any) -> bool:
        return True

    def allow_migrate(self, db: str, app_label: str, **hints: Any) -> bool:
        return db == self.alias
