"""Speed of the hot path: a request whose chat token is already stored.

Run with ``tox -e bench``; not part of the default test run. Figures are reported, not
asserted.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from chatauth import ChatAuth, ChatIdentity
from chatauth.stores.memory import MemoryStore
from chatauth.stores.sqlite import SQLiteStore
from tests.core.providers import CountingProvider


@pytest.mark.parametrize("store_kind", ["memory", "sqlite"])
def test_cached_get_session(benchmark, store_kind: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    store = MemoryStore() if store_kind == "memory" else SQLiteStore(tmp_path / "b.db")
    chat = ChatAuth(CountingProvider(), store)
    identity = ChatIdentity("user-bench")
    chat.get_session(identity, "s")
    benchmark(chat.get_session, identity, "s")
    assert chat.provider.issued == 1  # type: ignore[attr-defined]
    chat.close()


def test_first_token_with_local_minting(benchmark, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    chat = ChatAuth(CountingProvider(), SQLiteStore(tmp_path / "b.db"))
    counter = iter(range(10**9))
    benchmark(lambda: chat.get_session(ChatIdentity(f"user-{next(counter)}"), "s"))
    chat.close()


def test_import_time(benchmark) -> None:  # type: ignore[no-untyped-def]
    def run() -> None:
        subprocess.run([sys.executable, "-c", "import chatauth"], check=True)

    benchmark.pedantic(run, rounds=5, iterations=1)
