"""A durable local journal of chat-session ends that could not reach the store (DESIGN §8).

An app's logout must never fail because of chat. When the store is down at logout, the
chat session's end cannot be written where the sweep would find it, and the token would
keep being valid at the provider. :meth:`ChatAuth.end_session_durably
<chatauth.service.ChatAuth.end_session_durably>` then appends the session's key to this
journal, a small append-only file on the app's machine (next to the store, for SQLite), and
answers at once; :meth:`ChatAuth.sweep <chatauth.service.ChatAuth.sweep>` replays it once
the store answers again: the token is taken out of the store and revoked, or queued.

What is kept: one JSON line per end, ``{"provider", "uid", "digest", "at"}``, where
``digest`` is :attr:`~chatauth.tokens.SessionKey.digest` (a sha256, as in every store). The app
session id itself, a secret of the app's (for Django, the session cookie's value), is never
written. The file is created with mode 0600.

The journal also keeps a second kind of entry: a token nobody holds any more that the provider
must still revoke, when neither the provider nor the store could take it at that moment (a
token issued just as the store failed: it could not be saved, and revoking it at once failed
too). Such a line, ``{"token", "at"}``, holds the token as the store serialises it: encrypted
with the store's cipher when the store has one (``STORE_ENCRYPTION_KEY``), else the same JSON
the SQLite store file keeps, under the same file mode 0600. The sweep revokes it or queues it
for ``revoke-pending``.

Concurrency: many worker processes of one machine may append at once, and one sweep may
replay while they do. A writer appends one line under an exclusive ``flock`` and ``fsync``\\s
it; the replayer takes the same lock only to rename the journal aside (``<path>.replaying``),
then works on that copy without holding anything, so logouts never wait for provider calls.
Entries that still fail are appended again (:meth:`EndJournal.release`). A replay
interrupted by a crash leaves its copy, which the next replay claims first. POSIX only (``fcntl``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import IO

from chatauth.tokens import SessionKey

__all__ = ["EndJournal", "JournalEntry"]


@dataclasses.dataclass(frozen=True)
class JournalEntry:
    """One journaled entry and the UTC datetime ``at`` it was journaled.

    Either an end, ``key``: the session key, known by its digest only (``key.app_session`` is
    ``None``); or a revocation, ``token``: a token the provider must revoke that no store
    holds (``key`` is ``None``), as the store serialises it (:meth:`BaseStore.dump
    <chatauth.stores.base.BaseStore.dump>`: encrypted with the store's cipher, if it has one).
    """

    key: SessionKey | None
    at: datetime
    token: str | None = None


class EndJournal:
    """The journal file (see the module docstring).

    Args:
        path: the journal file; created on the first record, with its parent directory.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.replaying = self.path.with_name(self.path.name + ".replaying")

    def __repr__(self) -> str:
        return f"<EndJournal {str(self.path)!r}>"

    @contextlib.contextmanager
    def _locked_journal(self) -> Iterator[IO[str]]:
        """The current journal file, open for appending, under an exclusive lock."""
        import fcntl  # here: POSIX only, and the service imports this module everywhere

        self.path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            handle = os.fdopen(fd, "a", encoding="utf-8")
            try:
                fcntl.flock(handle, fcntl.LOCK_EX)
                try:
                    current = os.stat(self.path).st_ino
                except FileNotFoundError:
                    current = None
                if current == os.fstat(handle.fileno()).st_ino:
                    yield handle
                    return
                # A replay renamed the file between our open and our lock: open the new one.
            finally:
                handle.close()  # also releases the lock

    def record(self, key: SessionKey, *, now: datetime | None = None) -> None:
        """Append one end, durably (``fsync``) before returning.

        Raises:
            OSError: the file cannot be written (disk full, read-only).
        """
        self._append(JournalEntry(key, now or datetime.now(timezone.utc)))

    def record_revocation(self, token: str, *, now: datetime | None = None) -> None:
        """Append one revocation, durably: ``token`` is a token no store holds, serialised
        by the store (see :class:`JournalEntry`), that the provider must still revoke.

        Raises:
            OSError: the file cannot be written (disk full, read-only).
        """
        self._append(JournalEntry(None, now or datetime.now(timezone.utc), token=token))

    def _append(self, entry: JournalEntry) -> None:
        fields: dict[str, str] = {"at": entry.at.isoformat()}
        if entry.key is not None:
            fields.update(provider=entry.key.provider, uid=entry.key.uid, digest=entry.key.digest)
        if entry.token is not None:
            fields["token"] = entry.token
        line = json.dumps(fields, separators=(",", ":"))
        with self._locked_journal() as handle:
            handle.write(line + "\n")
            handle.flush()
            os.fsync(handle.fileno())

    def __len__(self) -> int:
        """How many entries are journaled (the current file and an interrupted replay's copy)."""
        return sum(len(self._read(p)) for p in (self.replaying, self.path))

    @staticmethod
    def _read(path: Path) -> list[JournalEntry]:
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        entries = []
        for line in text.splitlines():
            try:
                raw = json.loads(line)
                at = datetime.fromisoformat(raw["at"])
                if "token" in raw:
                    entries.append(JournalEntry(None, at, token=str(raw["token"])))
                    continue
                key = SessionKey.from_digest(raw["provider"], raw["uid"], raw["digest"])
                entries.append(JournalEntry(key, at))
            except (ValueError, KeyError, TypeError):
                continue  # a line torn by a crash mid-write: the rest is still good
        return entries

    def claim(self) -> list[JournalEntry] | None:
        """Take the journaled entries for a replay, oldest first: an interrupted replay's copy
        if there is one, else the current journal, renamed aside under the lock so that
        writers go on appending to a new file. ``None`` when there is nothing to replay.

        The replayer finishes what it can, then calls :meth:`release` with the entries it
        could not finish. Should it crash before that, the copy is claimed again whole next
        time: finishing an entry twice is harmless (ending a key already ended is a no-op,
        revoking a dead token counts as revoked).
        """
        if not self.replaying.exists():
            if not self.path.exists():
                return None
            with self._locked_journal():
                os.replace(self.path, self.replaying)
        return self._read(self.replaying)

    def release(self, kept: list[JournalEntry]) -> None:
        """End a replay: append ``kept`` (unfinished entries) to the journal again and drop
        the claimed copy.

        Raises:
            OSError: the journal cannot be written (the copy then stays, to be claimed again).
        """
        for entry in kept:
            self._append(entry)
        self.replaying.unlink(missing_ok=True)

    def replay(self, end: Callable[[SessionKey], bool]) -> tuple[int, int]:
        """Call ``end(key)`` for every journaled end, oldest first (revocation entries are
        kept: the service finishes both kinds itself, through :meth:`claim` and
        :meth:`release`).

        ``end`` returns ``True`` when the end is done (taken out of the store and revoked or
        queued), ``False`` to keep it for the next replay; an exception stops the replay and
        keeps what was not done yet.

        Returns:
            ``(done, remaining)``.
        """
        done = 0
        for _ in range(2):  # an interrupted replay's copy first, then the current journal
            entries = self.claim()
            if entries is None:
                break
            kept: list[JournalEntry] = []
            for index, entry in enumerate(entries):
                try:
                    finished = entry.key is not None and end(entry.key)
                except Exception:
                    self.release(kept + entries[index:])
                    raise
                if finished:
                    done += 1
                else:
                    kept.append(entry)
            self.release(kept)
        return done, len(self)
