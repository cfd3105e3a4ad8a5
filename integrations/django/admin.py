"""Admin for chat sessions: lists them (uid, provider, issue and expiry times, fingerprint),
never shows a token value, and ends chosen sessions (revoking them at the provider)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from .conf import get_service
from .ending import end_stored
from .models import ChatToken, PendingRevocation
from .store import DjangoStore

SAFE_FIELDS = ("uid", "provider", "issued_at", "expires_at", "usable_until", "fingerprint")


class _ReadOnly(admin.ModelAdmin):  # type: ignore[type-arg]
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(ChatToken)
class ChatTokenAdmin(_ReadOnly):
    """Chat sessions; ``payload`` (the token) is neither listed nor shown nor searchable."""

    list_display = SAFE_FIELDS
    list_filter = ("provider",)
    search_fields = ("uid", "fingerprint")
    fields = (*SAFE_FIELDS, "updated_at")
    readonly_fields = fields
    actions = ["end_sessions"]

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # A plain delete would forget the token without revoking it: use the action.
        return False

    @admin.action(
        description=_("End selected chat sessions (revoke at the provider)"), permissions=["end"]
    )
    def end_sessions(self, request: HttpRequest, queryset: QuerySet[ChatToken]) -> None:
        chatauth = get_service()
        store = chatauth.store
        if not isinstance(store, DjangoStore):
            self.message_user(
                request,
                _("CHATAUTH STORE is not the database: nothing listed here is in use."),
                messages.ERROR,
            )
            return
        ended, queued = end_stored(chatauth, store, list(queryset.values_list("key", flat=True)))
        self.message_user(
            request,
            ngettext("Ended %d chat session.", "Ended %d chat sessions.", ended) % ended,
            messages.SUCCESS,
        )
        if queued:
            self.message_user(
                request,
                ngettext(
                    "%d revocation failed and is queued for chatauth_revoke_pending.",
                    "%d revocations failed and are queued for chatauth_revoke_pending.",
                    queued,
                )
                % queued,
                messages.WARNING,
            )

    def has_end_permission(self, request: HttpRequest) -> bool:
        opts = self.opts
        user: Any = request.user
        return bool(user.has_perm(f"{opts.app_label}.delete_{opts.model_name}"))


@admin.register(PendingRevocation)
class PendingRevocationAdmin(_ReadOnly):
    """Queued revocations (no token values); ``manage.py chatauth_revoke_pending`` retries."""

    list_display = ("uid", "provider", "fingerprint", "attempts", "last_error", "created_at")
    list_filter = ("provider", "last_error")
    fields = list_display
    readonly_fields = fields

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
