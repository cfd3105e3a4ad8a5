"""Helpers shared by the server fixtures: stop by PID, check a PID is gone, temp dirs."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

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
    """The lifecycle the test servers share: ``start()``/``stop()`` (by the subclass),
    ``restart()`` on the same port and data, ``cleanup()`` (stop, then delete the temp dir),
    and use as a context manager that always cleans up."""

    _tmp: LazyTempDir

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

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
