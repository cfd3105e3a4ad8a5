"""The layering rule of DESIGN §2, the half import-linter cannot see: no core module imports
chatauth.integrations (the adapters live in the root integrations/ folder)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

CORE = Path(__file__).resolve().parents[1] / "chatauth"


def imported_names(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_core_never_imports_an_integration() -> None:
    offenders = {
        str(path.relative_to(CORE.parent)): sorted(
            n for n in imported_names(path) if n.startswith("chatauth.integrations")
        )
        for path in CORE.rglob("*.py")
    }
    assert {k: v for k, v in offenders.items() if v} == {}
    assert len(offenders) > 10  # the walk really saw the core


def test_the_checker_sees_such_an_import(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("from chatauth.integrations.django import middleware\n")
    assert "chatauth.integrations.django.middleware" in imported_names(bad)


def test_import_chatauth_loads_only_its_errors() -> None:
    # issue 19: `import chatauth` costs about as much as starting Python; the service, the
    # types and what they pull in (httpx, dataclasses, hashlib) load on first use.
    code = "import sys, chatauth; print(' '.join(sorted(sys.modules)))"
    loaded = set(
        subprocess.run(
            [sys.executable, "-c", code], check=True, capture_output=True, text=True
        ).stdout.split()
    )
    assert {m for m in loaded if m.startswith("chatauth")} == {"chatauth", "chatauth.errors"}
    assert not loaded & {"httpx", "jwt", "stamina", "dataclasses", "hashlib", "inspect"}
    assert not loaded & {"django", "flask", "starlette"}


def test_importing_an_integration_loads_no_service_or_http_client() -> None:
    # issue 19: the adapters load the service (httpx, stamina, pyjwt) with the ChatAuth an app
    # makes, not when their module is imported.
    for module in ("chatauth.integrations.starlette", "chatauth.integrations.flask"):
        code = f"import sys, {module}; print(' '.join(sorted(sys.modules)))"
        loaded = set(
            subprocess.run(
                [sys.executable, "-c", code], check=True, capture_output=True, text=True
            ).stdout.split()
        )
        assert module in loaded
        assert not loaded & {"chatauth.service", "chatauth.http", "httpx", "stamina", "jwt"}, module
