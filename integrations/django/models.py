"""The ORM token store's tables (see :mod:`chatauth.integrations.django.store`).

A row never holds an app session key in clear: ``key`` is
:attr:`chatauth.tokens.SessionKey.digest`, a sha256 over (provider, uid, app session).
``payload`` is the serialised token (:meth:`chatauth.stores.base.BaseStore.dump`, encrypted
when ``STORE_ENCRYPTION_KEY`` is set); the admin never shows it.
"""

from __future__ import annotations

from datetime import datetime

from django.db import models
from django.utils.translation import gettext_lazy as _

__all__ = ["ChatToken", "IssueLock", "PendingRevocation"]


class ChatToken(models.Model):
    """The current chat token of one (provider, uid, app session)."""

    key: models.CharField[str, str] = models.CharField(
        _("session key digest"), max_length=64, primary_key=True
    )
    user_key: models.CharField[str, str] = models.CharField(
        _("chat user digest"), max_length=64, db_index=True
    )
    provider: models.CharField[str, str] = models.CharField(_("provider"), max_length=64)
    uid: models.CharField[str, str] = models.CharField(_("chat uid"), max_length=255, db_index=True)
    fingerprint: models.CharField[str, str] = models.CharField(
        _("token fingerprint"),
        max_length=12,
        help_text=_("First 12 hex digits of the token's sha256."),
    )
    payload: models.TextField[str, str] = models.TextField(_("payload"), editable=False)
    issued_at: models.DateTimeField[datetime, datetime] = models.DateTimeField(_("issued at"))
    expires_at: models.DateTimeField[datetime | None, datetime | None] = models.DateTimeField(
        _("expires at"), null=True, blank=True
    )
    #: When chatauth stops serving the token (the earlier of expiry and issued + TOKEN_TTL).
    usable_until: models.DateTimeField[datetime | None, datetime | None] = models.DateTimeField(
        _("usable until"), null=True, blank=True, db_index=True
    )
    updated_at: models.DateTimeField[datetime, datetime] = models.DateTimeField(
        _("updated at"), auto_now=True
    )
    #: When the token was last served to its app session (set when stored, refreshed by
    #: cached hits at a coarse granularity): the sweep ends sessions idle for too long.
    served_at: models.DateTimeField[datetime | None, datetime | None] = models.DateTimeField(
        _("last served at"), null=True, blank=True, db_index=True
    )

    class Meta:
        verbose_name = _("chat session")
        verbose_name_plural = _("chat sessions")
        ordering = ["-issued_at"]

    def __str__(self) -> str:
        return f"{self.provider}:{self.uid} ({self.fingerprint})"


class IssueLock(models.Model):
    """A cross-process issue lock for one session key, with an expiry so a crashed worker
    cannot hold it for longer than the lock's ttl."""

    key: models.CharField[str, str] = models.CharField(max_length=64, primary_key=True)
    owner: models.CharField[str, str] = models.CharField(max_length=32)
    expires_at: models.FloatField[float, float] = models.FloatField(
        help_text=_("Unix time, seconds.")
    )

    class Meta:
        verbose_name = _("issue lock")


class PendingRevocation(models.Model):
    """A token whose revocation at the provider failed and is retried later
    (``manage.py chatauth_revoke_pending``)."""

    provider: models.CharField[str, str] = models.CharField(_("provider"), max_length=64)
    uid: models.CharField[str, str] = models.CharField(_("chat uid"), max_length=255)
    fingerprint: models.CharField[str, str] = models.CharField(
        _("token fingerprint"), max_length=12
    )
    payload: models.TextField[str, str] = models.TextField(_("payload"), editable=False)
    attempts: models.PositiveIntegerField[int, int] = models.PositiveIntegerField(
        _("attempts"), default=1
    )
    last_error: models.CharField[str, str] = models.CharField(_("last error code"), max_length=100)
    created_at: models.DateTimeField[datetime, datetime] = models.DateTimeField(
        _("queued at"), auto_now_add=True
    )

    class Meta:
        verbose_name = _("pending revocation")
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.provider}:{self.uid} ({self.fingerprint})"
