"""Helpers shared by the server fixtures: start on a port the server really got and wait until
ready, stop by PID, check a PID is gone, log tails, temp dirs."""

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
from typing import TYPE_CHECKING, Any

import pytest

from tests.servers.deadlines import PORT_ATTEMPTS, STARTUP_DEADLINE, STOP_DEADLINE
from tests.servers.ports import ADDRESS_IN_USE, PortInUseError, free_port, listens_on

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


def stop_process(proc: subprocess.Popen[Any], timeout: float = STOP_DEADLINE) -> None:
    """SIGTERM our child, wait, SIGKILL if needed, reap it so no zombie stays behind, and close
    the pipes we hold to it. Safe to call on a process that already exited."""
    try:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=timeout)
    finally:
        for pipe in (proc.stdin, proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()


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
    timeout: float = STARTUP_DEADLINE,
    interval: float,
    diagnostics: Callable[[], str],
    port: int | None = None,
    said_port_taken: Callable[[], bool] | None = None,
) -> None:
    """Poll ``probe`` every ``interval`` seconds until it returns ``None`` (ready).

    ``probe`` otherwise returns why the server is not ready yet, quoted if time runs out.
    ``pytest.fail`` with ``diagnostics()`` (e.g. a log tail) when ``proc`` exits first or after
    ``timeout`` seconds: "<name> exited with code ..." / "<name> did not <what> within ...".

    With ``port``, raises :class:`PortInUseError` instead when the port turns out to be
    another process's: ``proc`` exited and ``said_port_taken()`` (its output says so), or the
    probe was answered by a listener that is not ``proc``'s (the server that really holds the
    port, while ours fails to bind).
    """
    deadline = time.monotonic() + timeout
    last = "no answer yet"
    while time.monotonic() < deadline:
        code = proc.poll()
        if code is not None:
            if port is not None and said_port_taken is not None and said_port_taken():
                raise PortInUseError(port, f"{name} exited with code {code}")
            pytest.fail(f"{name} exited with code {code} during start-up.\n{diagnostics()}")
        reason = probe()
        if reason is None:
            if port is not None and listens_on(proc.pid, port) is False:
                raise PortInUseError(port, f"something other than {name} answered")
            return
        last = reason
        time.sleep(interval)
    pytest.fail(f"{name} did not {what} within {timeout:.0f} s ({last}).\n{diagnostics()}")


def start_process(
    command: Callable[[int], Sequence[str]],
    probe: Callable[[int], str | None],
    *,
    name: str,
    what: str,
    log_path: Path,
    port: int | None = None,
    timeout: float = STARTUP_DEADLINE,
    interval: float = 0.05,
    diagnostics: Callable[[], str] | None = None,
    **popen_kwargs: Any,
) -> tuple[subprocess.Popen[bytes], int]:
    """Start ``command(port)`` as our child and wait until ``probe(port)`` returns None.

    A server process cannot tell us a port it picked itself, and a port we pick can be taken
    by another process before the server binds it. So: try a free port; if the port turns out
    to be taken (:func:`wait_ready`'s check), stop the process and start again on a new port,
    up to ``PORT_ATTEMPTS`` times. With ``port`` (a restart, which must keep its address) there
    is one attempt and a taken port fails the test with a clear message.

    The child runs in its own session (a Ctrl-C at the terminal reaches pytest, which then
    stops it by PID), reads nothing, and appends its output to ``log_path``. If start-up fails
    it is stopped before the error propagates. Returns ``(process, port)``.
    """
    diagnostics = diagnostics or (lambda: log_tail(log_path))
    attempts = 1 if port is not None else PORT_ATTEMPTS
    taken: list[str] = []
    for _ in range(attempts):
        chosen = port if port is not None else free_port()
        # The child has its own copy of the log's descriptor; ours is closed at once.
        with open(log_path, "ab") as log:
            start = log.tell()  # only this attempt's output can say its port was taken
            proc = subprocess.Popen(
                list(command(chosen)),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                **popen_kwargs,
            )
        try:
            wait_ready(
                proc,
                lambda: probe(chosen),  # noqa: B023 - called before the loop moves on
                name=name,
                what=what,
                timeout=timeout,
                interval=interval,
                diagnostics=diagnostics,
                port=chosen,
                said_port_taken=lambda: _says_address_in_use(log_path, start),  # noqa: B023
            )
        except PortInUseError as exc:
            stop_process(proc)
            taken.append(str(exc))
            continue
        except BaseException:
            stop_process(proc)
            raise
        return proc, chosen
    pytest.fail(f"{name} could not get a port: " + "; ".join(taken) + f".\n{diagnostics()}")


def _says_address_in_use(path: Path, start: int) -> bool:
    try:
        with open(path, "rb") as log:
            log.seek(start)
            text = log.read().decode(errors="replace")
    except OSError:
        return False
    return ADDRESS_IN_USE.search(text) is not None


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
    cleans up. The subclass sets ``_tmp`` and ``log_path`` and may override ``_terminate``.

    ``port`` is known once the server has started: the first start tries free ports until the
    server holds one (see :func:`start_process`); later starts keep it."""

    name = "server"  # as failure messages call it
    host = "127.0.0.1"
    stop_timeout = STOP_DEADLINE
    _tmp: LazyTempDir
    _proc: subprocess.Popen[bytes] | None = None
    _port: int | None = None

    @property
    def port(self) -> int:
        """The server's TCP port on 127.0.0.1 (RuntimeError before the first ``start()``)."""
        if self._port is None:
            raise RuntimeError(f"{self.name} has no port before its first start()")
        return self._port

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
        command: Callable[[int], Sequence[str]],
        probe: Callable[[], str | None],
        *,
        what: str,
        interval: float,
        timeout: float = STARTUP_DEADLINE,
        output: Path | None = None,
        **popen_kwargs: Any,
    ) -> None:
        """Run ``command(port)`` as our child in the temp dir with :func:`start_process`
        (output appended to ``output``, default ``log_path``) until ``probe`` says ready.

        ``self.port`` is the port being tried while ``probe`` runs; a restart keeps the port
        of the first start.
        """
        keep = self._port

        def probe_port(port: int) -> str | None:
            self._port = port
            return probe()

        try:
            self._proc, self._port = start_process(
                command,
                probe_port,
                name=self.name,
                what=what,
                log_path=output or self.log_path,
                port=keep,
                timeout=timeout,
                interval=interval,
                diagnostics=self.diagnostics,
                cwd=self.directory,
                **popen_kwargs,
            )
        except BaseException:
            self._port = keep
            raise

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        """Terminate by PID (SIGKILL after ``stop_timeout``) and reap the process; the data in
        the temp dir is kept."""
        proc, self._proc = self._proc, None
        if proc is not None:
            self._terminate(proc)

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


class ServerGroup:
    """Several :class:`ServerProcess` run as one server (a Redis Cluster, a Sentinel set).

    Subclasses say which processes belong to it (:meth:`members`) and how it starts; the
    group stops each one by its PID, every stop in its own ``try`` so that one failing stop
    leaves none running, and is a context manager like a single :class:`ServerProcess`.
    """

    def members(self) -> Sequence[ServerProcess]:
        """Every process of the group, in start order."""
        raise NotImplementedError

    def stop_order(self) -> Sequence[ServerProcess]:
        """The order to stop them in (default: start order)."""
        return self.members()

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        """Stop every process by PID; the first error is raised after all were stopped."""
        errors: list[BaseException] = []
        for process in self.stop_order():
            try:
                process.stop()
            except BaseException as exc:  # re-raised below, after the others are stopped
                errors.append(exc)
        if errors:
            raise errors[0]

    def cleanup(self) -> None:
        """Stop every process and delete their temp dirs."""
        try:
            self.stop()
        finally:
            for process in self.members():
                process.cleanup()

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

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {[p.pid for p in self.members()]}>"
