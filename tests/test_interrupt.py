"""A test run ended by SIGTERM still stops what its fixtures started (``tests.interrupt``)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.servers.processes import stop_process

ROOT = Path(__file__).resolve().parents[1]

INNER = """
import os, subprocess, sys, time
from pathlib import Path
import pytest

@pytest.fixture
def child():
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait()

def test_runs_until_terminated(child):
    Path(os.environ["CHILD_PID_FILE"]).write_text(str(child.pid))
    time.sleep(600)  # what SIGTERM interrupts: the outer test sends it now
"""


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_sigterm_runs_the_fixtures_teardown(tmp_path: Path) -> None:
    (tmp_path / "test_inner.py").write_text(INNER)
    pid_file = tmp_path / "child.pid"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CHILD_PID_FILE": str(pid_file)}
    run = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "tests.interrupt",
            "-p",
            "no:cacheprovider",
            "--rootdir",
            str(tmp_path),
            "-c",
            os.devnull,
            str(tmp_path / "test_inner.py"),
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    child = None
    try:
        deadline = time.monotonic() + 60
        while not pid_file.exists() or not pid_file.read_text():
            assert run.poll() is None, run.stdout.read() if run.stdout else ""
            assert time.monotonic() < deadline, "the inner test never started its child"
            time.sleep(0.05)  # polling for the inner run's file, not standing in for it
        child = int(pid_file.read_text())
        assert alive(child)
        run.send_signal(signal.SIGTERM)
        out = run.communicate(timeout=60)[0].decode()
        assert "KeyboardInterrupt" in out, out
        assert not alive(child), "the fixture's finally block did not run"
    finally:
        stop_process(run)
        if child is not None and alive(child):
            os.kill(child, signal.SIGKILL)
