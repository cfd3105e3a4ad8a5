"""Build the private virtualenv the Synapse test fixture runs the homeserver from.

Usage: ``python tests/servers/install_synapse.py [VENV_DIR]``
(default ``<repo>/.tox/synapse-venv``).

Synapse lives in its own venv on purpose: its many dependencies must not mask a dependency
that chatauth forgot to declare. The script is idempotent: when ``VENV_DIR/bin/python`` can
already import ``synapse`` and ``authlib`` it only prints the version.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DEFAULT_VENV = REPO / ".tox" / "synapse-venv"
# authlib is what Synapse's jwt_config login needs; it is not a hard Synapse dependency.
PACKAGES = ["matrix-synapse", "authlib"]


def _venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def _works(venv: Path) -> bool:
    python = _venv_python(venv)
    if not python.exists():
        return False
    probe = subprocess.run(
        [str(python), "-c", "import synapse, authlib"],
        capture_output=True,
        check=False,
    )
    return probe.returncode == 0


def _synapse_version(venv: Path) -> str:
    out = subprocess.run(
        [
            str(_venv_python(venv)),
            "-c",
            # Not synapse.__version__: that appends git details of the current directory.
            "import importlib.metadata as m; print(m.version('matrix-synapse'))",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()


def _find_uv() -> str | None:
    found = shutil.which("uv")
    if found:
        return found
    # uv is often installed into the dev venv without that venv being activated.
    beside = Path(sys.executable).parent / "uv"
    return str(beside) if beside.is_file() and os.access(beside, os.X_OK) else None


def install(venv: Path) -> None:
    """Create ``venv`` (if needed) and install Synapse and authlib into it."""
    uv = _find_uv()
    if uv:
        if not _venv_python(venv).exists():
            subprocess.run([uv, "venv", "--python", sys.executable, str(venv)], check=True)
        subprocess.run(
            [
                uv,
                "pip",
                "install",
                "--compile-bytecode",
                "--python",
                str(_venv_python(venv)),
                *PACKAGES,
            ],
            check=True,
        )
    else:
        if not _venv_python(venv).exists():
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run(
            [str(_venv_python(venv)), "-m", "pip", "install", "--quiet", *PACKAGES],
            check=True,
        )


def _ensure_bytecode(venv: Path) -> None:
    """Precompile the venv: importing Synapse from source takes twice as long, on every start.

    Where PYTHONDONTWRITEBYTECODE is set (as on our CI machines) nothing else would write the
    .pyc files, and uv does not compile unless asked.
    """
    python = str(_venv_python(venv))
    package_dir = subprocess.run(
        [python, "-c", "import os, synapse; print(os.path.dirname(synapse.__file__))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    if (Path(package_dir) / "__pycache__").is_dir():
        return
    site_packages = str(Path(package_dir).parent)
    subprocess.run([python, "-m", "compileall", "-q", "-j", "0", site_packages], check=False)


def main(argv: list[str]) -> int:
    venv = Path(argv[1]).resolve() if len(argv) > 1 else DEFAULT_VENV
    if _works(venv):
        _ensure_bytecode(venv)
        print(f"Synapse {_synapse_version(venv)} already installed in {venv}")
        return 0
    started = time.monotonic()
    install(venv)
    if _works(venv):
        _ensure_bytecode(venv)
    else:
        print(
            f"installation into {venv} finished but 'import synapse, authlib' fails",
            file=sys.stderr,
        )
        return 1
    elapsed = time.monotonic() - started
    print(f"Synapse {_synapse_version(venv)} installed in {venv} ({elapsed:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
