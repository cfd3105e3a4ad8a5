"""Token stores: memory (tests), SQLite (embedded default), Redis (many machines)."""

from chatauth.stores.base import BaseStore, PendingRevocation
from chatauth.stores.memory import MemoryStore
from chatauth.stores.sqlite import SQLiteStore

__all__ = ["BaseStore", "MemoryStore", "PendingRevocation", "SQLiteStore"]
