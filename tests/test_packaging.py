"""The distribution as users get it: a light `import chatauth`, and the adapters shipped as
chatauth.integrations in the wheel and in an editable install alike (DESIGN §2)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FRAMEWORKS = ["django", "flask", "starlette", "fastapi", "werkzeug", "redis", "cryptography.fernet"]


#: For one build, install or probe: generous, as a wheel build or an install from the package
#: registry on a loaded 2-core machine can take minutes. ``subprocess.run`` kills and reaps the
#: child when it runs out, so nothing is left running.
BUILD_DEADLINE = 600.0


def run(*args: str, cwd: Path | None = None) -> str:
    done = subprocess.run(
        args, cwd=cwd, capture_output=True, text=True, timeout=BUILD_DEADLINE, check=False
    )
    assert done.returncode == 0, f"{args} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def test_import_chatauth_loads_no_web_framework() -> None:
    code = (
        "import sys, json, chatauth, chatauth.config, chatauth.service, chatauth.providers.matrix,"
        " chatauth.stores.sqlite; print(json.dumps(sorted(sys.modules)))"
    )
    loaded = set(json.loads(run(sys.executable, "-c", code)))
    assert not [name for name in FRAMEWORKS if name in loaded]


def _uv() -> str:
    uv = shutil.which("uv") or str(Path(sys.executable).parent / "uv")
    if not Path(uv).exists():
        pytest.fail("uv is needed to build throwaway venvs: pip install uv")
    return uv


def _fresh_venv(path: Path) -> Path:
    run(_uv(), "venv", "--quiet", "--python", sys.executable, str(path))
    return path / "bin" / "python"


# find_spec locates each adapter without running it (Django's needs configured settings);
# the Starlette one is imported for real, its extra being installed.
PROBE = (
    "import importlib.util as u, chatauth, chatauth.integrations.starlette;"
    " print(chatauth.__file__); print(chatauth.integrations.__file__);"
    " print(*(u.find_spec(f'chatauth.integrations.{n}').origin for n in ('django', 'flask')))"
)


def test_wheel_ships_integrations_inside_chatauth(tmp_path: Path) -> None:
    run(_uv(), "build", "--quiet", "--wheel", "--out-dir", str(tmp_path / "dist"), str(REPO))
    (wheel,) = (tmp_path / "dist").glob("chatauth_middleware-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "chatauth/py.typed" in names
    assert "chatauth/static/chatauth.js" in names  # served by every adapter
    assert "chatauth/integrations/starlette/__init__.py" in names
    assert "chatauth/integrations/django/migrations/__init__.py" in names
    assert not [n for n in names if n.startswith(("integrations/", "tests/", "sample_projects/"))]
    python = _fresh_venv(tmp_path / "venv")
    run(_uv(), "pip", "install", "--quiet", "--python", str(python), f"{wheel}[starlette]")
    files = run(str(python), "-c", PROBE, cwd=tmp_path).split()
    assert len(files) == 4
    assert all(str(tmp_path / "venv") in f for f in files)
    assert files[1].endswith("chatauth/integrations/__init__.py")


def test_editable_install_maps_integrations_the_same_way(tmp_path: Path) -> None:
    python = _fresh_venv(tmp_path / "venv")
    run(_uv(), "pip", "install", "--quiet", "--python", str(python), "-e", f"{REPO}[starlette]")
    chatauth_file, integrations_file, django, flask = run(
        str(python), "-c", PROBE, cwd=tmp_path
    ).split()
    assert chatauth_file == str(REPO / "chatauth" / "__init__.py")
    assert integrations_file == str(REPO / "integrations" / "__init__.py")
    assert django == str(REPO / "integrations" / "django" / "__init__.py")
    assert flask == str(REPO / "integrations" / "flask" / "__init__.py")
