"""Worker processes that a test starts together and always stops.

Protocol over the workers' stdio: each worker prints ``ready`` when its start-up is done
(imports, Django set-up, store opened), then blocks reading one line from stdin; the test
writes ``go`` to every worker at once, so they start their work at the same moment however
long each start-up took (a gate, with no polling). A worker prints its result as the last line
of its stdout. stderr goes to a file per worker, so a chatty worker can never block on a full
pipe, and the file is shown when the worker fails.

:class:`Workers` is a context manager: on leaving it (an assertion failed, a deadline passed,
the test was interrupted) every worker still running is killed by its PID and reaped, and every
pipe is closed, so no process and no ResourceWarning outlives the test.
"""

from __future__ import annotations

import select
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

__all__ = ["Workers"]

REPO = Path(__file__).resolve().parents[2]


class Workers:
    """Start ``argvs`` (one process each) from the repository root.

    Args:
        argvs: one command line per worker.
        logs: folder for the workers' stderr files (``worker-<n>.stderr``).
        deadline: seconds from construction by which every worker must have finished; each
            wait below uses what is left of it.
    """

    def __init__(self, argvs: Sequence[Sequence[str]], *, logs: Path, deadline: float) -> None:
        self.argvs = [list(argv) for argv in argvs]
        self.logs = logs
        self.deadline = time.monotonic() + deadline
        self.procs: list[subprocess.Popen[bytes]] = []

    def _left(self) -> float:
        return max(0.0, self.deadline - time.monotonic())

    def __enter__(self) -> Workers:
        try:
            for n, argv in enumerate(self.argvs):
                with (self.logs / f"worker-{n}.stderr").open("wb") as stderr:
                    self.procs.append(
                        subprocess.Popen(
                            argv, cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=stderr,
                        )
                    )  # fmt: skip
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def stderr(self, n: int) -> str:
        """The stderr of worker ``n`` so far (for failure messages)."""
        return (self.logs / f"worker-{n}.stderr").read_text(errors="replace")[-4000:]

    def wait_ready(self) -> None:
        """Block until every worker has printed ``ready``.

        Raises:
            AssertionError: a worker exited or printed something else, or the deadline passed.
        """
        for n, proc in enumerate(self.procs):
            assert proc.stdout is not None
            readable, _, _ = select.select([proc.stdout], [], [], self._left())
            assert readable, f"worker {n} not ready before the deadline:\n{self.stderr(n)}"
            line = proc.stdout.readline().strip()
            assert line == b"ready", f"worker {n} said {line!r}:\n{self.stderr(n)}"

    def go(self) -> None:
        """Open the gate: every worker reads ``go`` and starts."""
        for proc in self.procs:
            assert proc.stdin is not None
            proc.stdin.write(b"go\n")
            proc.stdin.flush()

    def results(self) -> list[str]:
        """Wait for every worker to exit; the last stdout line of each.

        Raises:
            AssertionError: a worker exited with an error (its stderr is in the message).
            subprocess.TimeoutExpired: the deadline passed (the workers are then killed on
                leaving the ``with`` block).
        """
        lines = []
        for n, proc in enumerate(self.procs):
            out, _ = proc.communicate(timeout=self._left())
            assert proc.returncode == 0, f"worker {n} exited {proc.returncode}:\n{self.stderr(n)}"
            lines.append(out.decode().strip().splitlines()[-1])
        return lines

    def stop(self) -> None:
        """Kill (by PID) every worker still running, reap it and close its pipes."""
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            # communicate() closes stdin/stdout and waits: the reaped child leaves no zombie
            # and the pipes no ResourceWarning. A killed child exits at once.
            try:
                proc.communicate(timeout=30)
            except OSError:  # a broken pipe to a dead worker: still reap it
                proc.wait(timeout=30)
            for pipe in (proc.stdin, proc.stdout):
                if pipe is not None and not pipe.closed:
                    pipe.close()
