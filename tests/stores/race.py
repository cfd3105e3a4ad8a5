"""One OS process of the SQLiteStore race test: ``python -m tests.stores.race CONFIG``.

CONFIG is JSON: ``{"path": <SQLite file>, "count_file": <file>, "handshake_dir": <folder>,
"waiters": <other processes>}``. The worker builds a :class:`~chatauth.ChatAuth` on an
observed SQLiteStore (:class:`tests.stores.handshake.ReportsLock`) with a counting provider
that, inside the issue lock, waits for the other processes to find the lock taken; it follows
the gate protocol of :mod:`tests.stores.workers`, asks for one user's session and prints the
token value.
"""

from __future__ import annotations

import json
import sys
from datetime import timedelta

from chatauth import ChatAuth
from chatauth.http import Flow
from chatauth.identity import ChatIdentity
from chatauth.stores.sqlite import SQLiteStore
from chatauth.tokens import ChatToken
from tests.core.providers import CountingProvider
from tests.stores.handshake import ReportsLock, hold_until_seen


class ObservedSQLiteStore(ReportsLock, SQLiteStore):
    """SQLiteStore, unchanged, reporting its lock attempts."""


class HandshakeProvider(CountingProvider):
    """Counts issues in ``count_file`` and holds each issue until ``waiters`` others found
    the lock taken."""

    def __init__(self, *, count_file: str, handshake_dir: str, waiters: int) -> None:
        super().__init__(count_file=count_file)
        self.handshake_dir = handshake_dir
        self.waiters = waiters

    def issue(self, identity: ChatIdentity, ttl: timedelta) -> Flow[ChatToken]:
        flow = super().issue(identity, ttl)  # appends the count line
        hold_until_seen(self.handshake_dir, self.waiters)
        return flow


class _User:
    pk = 77


def main(raw: str) -> None:
    config = json.loads(raw)
    store = ObservedSQLiteStore(config["path"])
    store.handshake_dir = config["handshake_dir"]
    provider = HandshakeProvider(
        count_file=config["count_file"],
        handshake_dir=config["handshake_dir"],
        waiters=int(config["waiters"]),
    )
    chat = ChatAuth(provider, store)
    print("ready", flush=True)
    if sys.stdin.readline().strip() != "go":
        return  # the test gave up before the start
    value = chat.get_session(_User(), "one-browser-session").token.value
    chat.close()
    print(value, flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
