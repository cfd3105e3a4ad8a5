"""Helpers shared by the server fixtures: start and wait until ready, stop by PID, check a PID
is gone, log tails, temp dirs."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from typing_extensions import Self


def pid_running(pid: int) -> bool:
    """True while ``pid`` is a live (not zombie) process.

    ``os.kill(pid, 0)`` alone also succeeds for a zombie: a daemon such as the postmaster is
    reparented to PID 1, and an init that does not reap leaves it as one after it exited.
    """
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    # The state is the field after the parenthesised command name (which may contain spaces).
    return stat.rpartition(")")[2].split()[0] not in {"Z", "X"}


def wait_pid_gone(pid: int, timeout: float) -> bool:
    """Wait until ``pid`` is no longer running; False on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_running(pid):
            return True
        time.sleep(0.05)
    return not pid_running(pid)


def terminate_pid(pid: int, timeout: float) -> None:
    """SIGTERM a process we did not spawn directly, then SIGKILL if it outlives ``timeout``."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        if wait_pid_gone(pid, timeout):
            return


def stop_process(proc: subprocess.Popen[bytes], timeout: float) -> None:
    """SIGTERM our child, wait, SIGKILL if needed, and reap it so no zombie stays behind."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=timeout)


def log_tail(path: Path, lines: int = 40) -> str:
    """The last ``lines`` lines of ``path`` under a ``--- path ---`` header (for failure
    messages)."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return f"--- {path} ---\n(not readable)"
    return f"--- {path} ---\n" + ("\n".join(text.splitlines()[-lines:]) or "(empty)")


def wait_ready(
    proc: subprocess.Popen[bytes],
    probe: Callable[[], str | None],
    *,
    name: str,
    what: str,
    timeout: float,
    interval: float,
    diagnostics: Callable[[], str],
) -> None:
    """Poll ``probe`` every ``interval`` seconds until it returns ``None`` (ready).

    ``probe`` otherwise returns why the server is not ready yet, quoted if time runs out.
    ``pytest.fail`` with ``diagnostics()`` (e.g. a log tail) when ``proc`` exits first or after
    ``timeout`` seconds: "<name> exited with code ..." / "<name> did not <what> within ...".
    """
    deadline = time.monotonic() + timeout
    last = "no answer yet"
    while time.monotonic() < deadline:
        code = proc.poll()
        if code is not None:
            pytest.fail(f"{name} exited with code {code} during start-up.\n{diagnostics()}")
        reason = probe()
        if reason is None:
            return
        last = reason
        time.sleep(interval)
    pytest.fail(f"{name} did not {what} within {timeout:.0f} s ({last}).\n{diagnostics()}")


class LazyTempDir:
    """A temp dir made on first use, so constructing a server (e.g. only to read ``.binary``)
    leaves nothing behind; ``remove()`` deletes it if it was made. Made at most once: after
    ``remove()``, ``path`` still names the deleted dir rather than leaking a new one."""

    def __init__(self, prefix: str, on_create: Callable[[Path], None] | None = None) -> None:
        self._prefix = prefix
        self._on_create = on_create
        self._path: Path | None = None

    @property
    def path(self) -> Path:
        if self._path is None:
            self._path = Path(tempfile.mkdtemp(prefix=self._prefix))
            if self._on_create is not None:
                self._on_create(self._path)
        return self._path

    def remove(self) -> None:
        if self._path is not None:
            shutil.rmtree(self._path, ignore_errors=True)


class ServerProcess:
    """The lifecycle the test servers share: ``start()`` (by the subclass, with
    ``_start_process``), ``stop()`` by PID, ``restart()`` on the same port and data,
    ``cleanup()`` (stop, then delete the temp dir), and use as a context manager that always
    cleans up. The subclass sets ``_tmp`` and ``log_path`` and may override ``_terminate``."""

    name = "server"  # as failure messages call it
    stop_timeout = 10.0
    _tmp: LazyTempDir
    _proc: subprocess.Popen[bytes] | None = None
    _log: IO[bytes] | None = None

    @property
    def directory(self) -> Path:
        """The server's temp dir (made on first use; ``cleanup()`` deletes it)."""
        return self._tmp.path

    @property
    def log_path(self) -> Path:
        raise NotImplementedError

    @property
    def pid(self) -> int | None:
        """PID of the running server process, ``None`` when stopped."""
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def diagnostics(self, lines: int = 30) -> str:
        """The tail of the server's log, for error messages."""
        return log_tail(self.log_path, lines)

    def _start_process(
        self,
        args: Sequence[str],
        probe: Callable[[], str | None],
        *,
        what: str,
        timeout: float,
        interval: float,
        output: Path | None = None,
        **popen_kwargs: Any,
    ) -> None:
        """Run ``args`` as our child in the temp dir, in its own session (a Ctrl-C at the
        terminal reaches pytest, which then stops it by PID), its output appended to ``output``
        (default ``log_path``); then ``wait_ready`` with ``probe``. Stops it if that fails."""
        self._log = open(output or self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self._proc = subprocess.Popen(
            args,
            cwd=self.directory,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            **popen_kwargs,
        )
        try:
            wait_ready(
                self._proc,
                probe,
                name=self.name,
                what=what,
                timeout=timeout,
                interval=interval,
                diagnostics=self.diagnostics,
            )
        except BaseException:
            self.stop()
            raise

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        """Terminate by PID (SIGKILL after ``stop_timeout``) and reap the process; the data in
        the temp dir is kept."""
        proc, self._proc = self._proc, None
        try:
            if proc is not None:
                self._terminate(proc)
        finally:
            if self._log is not None:
                self._log.close()
                self._log = None

    def _terminate(self, proc: subprocess.Popen[bytes]) -> None:
        stop_process(proc, self.stop_timeout)

    def restart(self) -> Self:
        """Stop (if running) and start again on the same port with the same data."""
        self.stop()
        return self.start()

    def cleanup(self) -> None:
        """Stop and delete the temp dir."""
        try:
            self.stop()
        finally:
            self._tmp.remove()

    def __enter__(self) -> Self:
        try:
            return self.start()
        except BaseException:
            self.cleanup()
            raise

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.cleanup()
