"""System checks: each broken setting gives its chatauth.E0xx id with a hint, through
``django.core.checks.run_checks()``; the middleware refuses to load with the same problem."""

from __future__ import annotations

from typing import Any

import pytest
from chatauth.integrations.django.middleware import ChatAuthMiddleware
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpResponse
from django.test import override_settings

from chatauth.testing import canary

GOOD = {"PROVIDER": "jwt", "JWT_SECRET": "x" * 32}
OURS = "chatauth.integrations.django.middleware.ChatAuthMiddleware"
AUTH = "django.contrib.auth.middleware.AuthenticationMiddleware"
SESSION = "django.contrib.sessions.middleware.SessionMiddleware"


def chatauth_errors() -> list[checks.CheckMessage]:
    return [m for m in checks.run_checks() if str(m.id).startswith("chatauth.")]


def ids() -> list[str]:
    return [str(m.id) for m in chatauth_errors()]


def test_the_test_settings_pass_every_check() -> None:
    assert chatauth_errors() == []


@pytest.mark.parametrize(
    ("chatauth", "check_id"),
    [
        pytest.param({"JWT_SECRET": "x"}, "chatauth.E001", id="missing-provider"),
        pytest.param({"PROVIDER": "nope"}, "chatauth.E001", id="unknown-provider"),
        pytest.param({"PROVIDER": "jwt"}, "chatauth.E002", id="missing-jwt-secret"),
        pytest.param(
            {"PROVIDER": "matrix", "MATRIX_HOMESERVER_URL": "http://127.0.0.1:1"},
            "chatauth.E002",
            id="missing-matrix-admin-token",
        ),
        pytest.param({**GOOD, "STORE": "mongodb://x"}, "chatauth.E005", id="unknown-store"),
        pytest.param({**GOOD, "STORE": 42}, "chatauth.E005", id="store-not-a-url"),
        pytest.param(
            {**GOOD, "UID_MAPPER": "no.such.module.uid"}, "chatauth.E006", id="bad-uid-mapper"
        ),
        pytest.param(
            {**GOOD, "UID_MAPPER": "django.conf.settings"},
            "chatauth.E006",
            id="uid-mapper-not-callable",
        ),
        pytest.param({**GOOD, "JWT_SECERT": "typo"}, "chatauth.E007", id="unknown-key"),
        pytest.param({**GOOD, "TOKEN_TTL": "soon"}, "chatauth.E007", id="bad-ttl"),
        pytest.param(["jwt"], "chatauth.E008", id="not-a-dict"),
    ],
)
def test_broken_settings_give_their_check_id_and_a_hint(chatauth: Any, check_id: str) -> None:
    with override_settings(CHATAUTH=chatauth):
        errors = chatauth_errors()
        assert [str(e.id) for e in errors] == [check_id]
        assert errors[0].hint
        assert errors[0].level == checks.ERROR
        # The middleware refuses to load with the same problem (at start-up, not per request).
        with pytest.raises(ImproperlyConfigured) as raised:
            ChatAuthMiddleware(lambda request: HttpResponse())
        assert raised.value.check_id == check_id  # type: ignore[attr-defined]


def test_missing_chatauth_setting_is_e001(settings: Any) -> None:
    del settings.CHATAUTH
    assert ids() == ["chatauth.E001"]


def test_secret_values_never_appear_in_check_messages() -> None:
    secret = "s3cr3t-value-that-must-not-leak"
    with override_settings(CHATAUTH={**GOOD, "JWT_SECRET": secret, "TOKEN_TTL": "soon"}):
        for message in chatauth_errors():
            assert secret not in str(message)


@pytest.mark.parametrize("key", ["UID_MAPPER", "NAME_ATTRIBUTE", "AVATAR_ATTRIBUTE"])
@pytest.mark.parametrize(
    "value",
    [
        # A secret pasted into the wrong key, with the dot that makes it a dotted path.
        canary.secret("pasted-into-uid-mapper") + ".key",
        "chatauth.testing.canary." + canary.secret("pasted-attribute").replace("-", "_"),
        "django.conf.settings",  # imports, not callable
        canary.secret("pasted-with-colon") + ":x",
    ],
    ids=["secret-with-dot", "missing-attribute", "not-callable", "secret-with-colon"],
)
def test_e006_names_the_setting_and_the_problem_never_the_value(key: str, value: str) -> None:
    with override_settings(CHATAUTH={**GOOD, key: value}):
        errors = chatauth_errors()
        assert [str(e.id) for e in errors] == ["chatauth.E006"]
        text = f"{errors[0].msg} {errors[0].hint} {errors[0]!r}"
        assert key in errors[0].msg
        assert value not in text and canary.find(text) == []
        assert "dotted path" in errors[0].msg


def test_middleware_missing_is_e003(settings: Any) -> None:
    settings.MIDDLEWARE = [m for m in settings.MIDDLEWARE if m != OURS]
    assert ids() == ["chatauth.E003"]


def test_middleware_before_authentication_is_e004(settings: Any) -> None:
    settings.MIDDLEWARE = [SESSION, OURS, AUTH]
    assert ids() == ["chatauth.E004"]


def test_a_subclass_of_the_middleware_counts(settings: Any) -> None:
    settings.MIDDLEWARE = [SESSION, AUTH, "tests.integrations.django.test_checks.MyMiddleware"]
    assert ids() == []


class MyMiddleware(ChatAuthMiddleware):
    pass


@pytest.mark.django_db
def test_migrations_match_the_models() -> None:
    from django.core.management import call_command

    # Exits with status 1 if the models changed without a migration.
    call_command("makemigrations", "chatauth", "--check", "--dry-run", verbosity=0)
