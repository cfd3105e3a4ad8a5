"""The official chat SDKs from npm, bundled once for the browser tests.

``package.json`` and ``package-lock.json`` beside this file pin each SDK (and esbuild, the
bundler) to one version; ``entries/<name>.mjs`` says what each bundle exports. :func:`build`
installs them with ``npm ci`` into a cache directory outside the git tree (the browser tox env
points ``E2E_SDK_DIR`` at ``.tox/js-sdks``; default ``build/js-sdks``) and bundles each entry
with esbuild into ``<dir>/<key>/bundles/<name>.js``: one ES module per SDK, which the tests
serve to the page under the app's own origin. ``<key>`` hashes the pinned files, so a change
of version rebuilds and an unchanged checkout reuses the bundles (npm's own cache makes a
rebuild after a version change fetch only what changed).

Usage: ``python -m tests.e2e.browser.sdks.build [DIR]`` prints the bundle directory.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[3]
DEFAULT_DIR = REPO / "build" / "js-sdks"
ENTRIES = HERE / "entries"
#: The npm packages whose versions the tests report (name in the bundle -> npm package).
PACKAGES = {
    "matrix": "matrix-js-sdk",
    "stream": "stream-chat",
    "sendbird": "@sendbird/chat",
    "cometchat": "@cometchat/chat-sdk-javascript",
}
#: Seconds ``npm ci`` may take (a cold npm cache on a slow registry; ~5 s when warm).
INSTALL_DEADLINE = 600


class SDKBuildError(RuntimeError):
    """npm or esbuild failed, or is missing; the message says which and how to fix it."""


def _key() -> str:
    digest = hashlib.sha256()
    for path in [HERE / "package.json", HERE / "package-lock.json", *sorted(ENTRIES.glob("*"))]:
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def _run(command: list[str], cwd: Path) -> None:
    try:
        done = subprocess.run(
            command,
            cwd=cwd,
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            timeout=INSTALL_DEADLINE,
            check=False,
        )
    except FileNotFoundError as exc:
        raise SDKBuildError(
            f"{command[0]} not found: install Node.js and npm (scripts/install-test-deps does)."
        ) from exc
    if done.returncode != 0:
        tail = (done.stdout + done.stderr)[-3000:]
        raise SDKBuildError(f"{' '.join(command)} exited {done.returncode} in {cwd}:\n{tail}")


def build(directory: Path | None = None) -> Path:
    """Install the pinned SDKs and bundle them, unless an identical build is already there.

    Args:
        directory: the cache root; default ``$E2E_SDK_DIR`` or ``<repo>/build/js-sdks``.

    Returns:
        The directory holding ``<name>.js`` for each entry and ``versions.json``
        (``{"matrix": "43.0.0", ...}``, read from the installed packages).

    Raises:
        SDKBuildError: npm is missing, or ``npm ci`` or esbuild failed.
    """
    root = Path(directory or os.environ.get("E2E_SDK_DIR") or DEFAULT_DIR)
    target = root / _key()
    bundles = target / "bundles"
    if (bundles / "versions.json").is_file():
        return bundles
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    for name in ("package.json", "package-lock.json"):
        shutil.copyfile(HERE / name, target / name)
    npm = shutil.which("npm") or "npm"
    # --ignore-scripts: no package here needs its install script (esbuild finds its binary in
    # the platform package npm installs beside it), and none should run on a test machine.
    _run(
        [npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--prefer-offline"],
        target,
    )
    staging = target / "staging"
    # The entries are bundled from beside node_modules, where their imports resolve.
    shutil.copytree(ENTRIES, target / "entries")
    entries = sorted(f"entries/{path.name}" for path in ENTRIES.glob("*.mjs"))
    _run(
        [
            str(target / "node_modules" / ".bin" / "esbuild"),
            *entries,
            "--bundle",
            "--format=esm",
            "--platform=browser",
            "--log-level=warning",
            f"--outdir={staging}",
        ],
        target,
    )
    versions = {}
    for name, package in PACKAGES.items():
        manifest = target / "node_modules" / package / "package.json"
        versions[name] = json.loads(manifest.read_text())["version"]
    (staging / "versions.json").write_text(json.dumps(versions, indent=2) + "\n")
    # Written last and renamed into place: a build cut short is never taken for a finished one.
    staging.rename(bundles)
    return bundles


if __name__ == "__main__":
    print(build(Path(sys.argv[1]) if len(sys.argv) > 1 else None))
