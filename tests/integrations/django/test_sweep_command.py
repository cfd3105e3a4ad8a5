"""``manage.py chatauth_sweep``: the core sweep, with the session age as its idle bound."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from chatauth.integrations.django import conf
from chatauth.integrations.django.models import ChatToken
from django.core.management import call_command
from django.test import Client

from chatauth.service import ChatAuth
from chatauth.testing.clock import ManualClock


@pytest.fixture
def clock(settings: Any) -> Iterator[ManualClock]:
    """The adapter's service, built from the settings as ``get_service`` does, on a clock
    the test moves."""
    settings.SESSION_COOKIE_AGE = 1200
    settings.CHATAUTH = {**settings.CHATAUTH, "TOKEN_TTL": 86400}  # idle, not re-issue, ends it
    clock = ManualClock()
    conf.reset()
    conf._instance = conf._connect_signals(conf.build_chatauth(clock=clock))
    yield clock
    conf.reset()


def sweep() -> str:
    out = io.StringIO()
    call_command("chatauth_sweep", stdout=out)
    return out.getvalue()


@pytest.mark.django_db
def test_an_abandoned_session_is_swept_after_the_session_cookie_age(
    client: Client, user: Any, clock: ManualClock
) -> None:
    service: ChatAuth = conf.get_service()
    assert service.session_idle == timedelta(seconds=1200)  # SESSION_COOKIE_AGE
    assert service.journal is None  # the test database is in memory: no file to sit next to
    client.force_login(user)
    assert client.get("/chat/token").status_code == 200  # then the browser is gone
    clock.advance(1100)
    assert "sweep: swept=0 revoked=0 queued=0 journaled=0" in sweep()
    assert ChatToken.objects.count() == 1
    clock.advance(200)
    assert "sweep: swept=1 " in sweep()
    assert ChatToken.objects.count() == 0
