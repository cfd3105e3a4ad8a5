"""Django signals for chat sessions, and the receivers that end them.

Sent by chatauth (re-emitting the core hooks :attr:`ChatAuth.on_token_issued` and
:attr:`ChatAuth.on_session_ended`); ``sender`` is the :class:`~chatauth.service.ChatAuth`
class, ``chatauth`` the instance:

* :data:`chat_session_started` -- a token was issued. Keyword: ``session``
  (:class:`~chatauth.session.ChatSession`).
* :data:`chat_session_ended` -- tokens were dropped and revoked (or queued for revocation).
  Keywords: ``identity`` (:class:`~chatauth.identity.ChatIdentity`), ``tokens``
  (list of :class:`~chatauth.tokens.ChatToken`).
* :data:`chat_user_changed` -- a chat-user operation ran (update, deactivate, erase), done or
  queued. Keyword: ``change`` (:class:`~chatauth.chat_users.ChatUserChange`).

Receivers run where the call happened: inside ``await request.achat()`` that is the event
loop, so a receiver that touches the ORM must be an async function or use ``sync_to_async``.

Received by chatauth: ``user_logged_out`` ends the chat session of that app session (Django's
``logout()`` sends it before flushing the session, so its chat session id is still there),
``user_logged_in`` ends whatever chat session a kept app session had,
and a saved password change ends all of the user's chat sessions when
``END_SESSIONS_ON_PASSWORD_CHANGE`` is on (the default). Opt-in, on the user model, after the
transaction commits: ``post_save`` with a changed chat name or avatar updates the chat user
(``UPDATE_CHAT_USER_ON_SAVE``), ``is_active`` turning false deactivates it
(``DEACTIVATE_CHAT_USER_ON_INACTIVE``), ``post_delete`` erases it
(``ERASE_CHAT_USER_ON_DELETE``).
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction
from django.dispatch import Signal

from chatauth import chat_users
from chatauth.chat_users import ChatUserChange
from chatauth.errors import ChatAuthError
from chatauth.identity import ChatIdentity
from chatauth.service import ChatAuth
from chatauth.session import ChatSession
from chatauth.tokens import ChatToken

__all__ = ["chat_session_ended", "chat_session_started", "chat_user_changed"]

logger = logging.getLogger("chatauth.django")

#: Sent after a token was issued. Keyword arguments: ``chatauth``, ``session``.
chat_session_started = Signal()
#: Sent after a chat session ended. Keyword arguments: ``chatauth``, ``identity``, ``tokens``.
chat_session_ended = Signal()
#: Sent after a chat-user operation. Keyword arguments: ``chatauth``, ``change``.
chat_user_changed = Signal()


class _Hooks:
    """The core hooks, re-emitted as the signals above."""

    def token_issued(self, session: ChatSession) -> None:
        from .conf import get_service

        chat_session_started.send(sender=ChatAuth, chatauth=get_service(), session=session)

    def session_ended(self, identity: ChatIdentity, tokens: list[ChatToken]) -> None:
        from .conf import get_service

        chat_session_ended.send(
            sender=ChatAuth, chatauth=get_service(), identity=identity, tokens=tokens
        )

    def chat_user_changed(self, change: ChatUserChange) -> None:
        from .conf import get_service

        chat_user_changed.send(sender=ChatAuth, chatauth=get_service(), change=change)


chatauth_hooks = _Hooks()


def end_chat_on_logout(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    """``user_logged_out`` receiver: end the chat session of the app session logging out
    (Django's ``logout()`` sends it before flushing the session, so the id is still there).

    Never raises: a failed revocation is queued by the core, and a store outage must not
    make logging out of the app fail (it is logged; the sweep finishes the job).
    """
    if request is None or not hasattr(request, "session"):
        return
    from .middleware import binding

    try:
        binding(request).end()
    except ChatAuthError as exc:
        logger.warning("chatauth could not end the chat session at logout (%s)", exc.code)


def end_chat_on_login(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    """``user_logged_in`` receiver: whatever chat session the app session had is over (a
    session Django kept, e.g. the same user logging in again); never raises."""
    if request is None or not hasattr(request, "session"):
        return
    from .middleware import binding

    try:
        binding(request).login()
    except ChatAuthError as exc:
        logger.warning("chatauth could not end the chat session at login (%s)", exc.code)


def _remember_password_change(sender: Any, instance: Any, raw: bool = False, **kwargs: Any) -> None:
    """``pre_save`` on the user model: note whether the password hash is about to change."""
    update_fields = kwargs.get("update_fields")
    if (
        raw
        or instance.pk is None
        or (update_fields is not None and "password" not in update_fields)
    ):
        return
    from .conf import setting

    if not setting("end_sessions_on_password_change", True):
        return
    using = kwargs.get("using")
    old = (
        type(instance)
        ._default_manager.using(using)
        .filter(pk=instance.pk)
        .values_list("password", flat=True)
        .first()
    )
    if old is not None and old != instance.password:
        instance._chatauth_password_changed = True


def end_chat_on_password_change(sender: Any, instance: Any, **kwargs: Any) -> None:
    """``post_save`` on the user model: after a password change commits, end every chat
    session of the user (``update_session_auth_hash`` keeps the current app session; its chat
    session gets a fresh token on the next request)."""
    if not getattr(instance, "_chatauth_password_changed", False):
        return
    del instance._chatauth_password_changed

    def end_all() -> None:
        from .conf import get_service

        try:
            get_service().end_all_sessions(instance)
        except ChatAuthError as exc:
            logger.warning(
                "chatauth could not end the chat sessions after a password change (%s)", exc.code
            )

    transaction.on_commit(end_all, using=kwargs.get("using"))


def _chat_user_later(operation: str, user: Any, using: str | None) -> None:
    """Run a chat-user operation once the transaction commits; never raises (a provider
    failure is queued by the core, anything else is logged)."""

    def run() -> None:
        from chatauth import maintenance

        from .conf import get_service

        service = get_service()
        try:
            maintenance.chat_user(service, operation, user)
        except ChatAuthError as exc:
            # Not queued (the store itself is down, or the mapping failed): say how to finish
            # it by hand, since nothing will retry it.
            try:
                uid = service.identity_for(user).uid
            except ChatAuthError:
                uid = "<the user's chat UID>"
            logger.error(
                "chatauth could not %s the chat user %s (%s); when fixed, run: manage.py "
                "chatauth_chat_user %s --uid %s",
                operation,
                uid,
                exc.code,
                operation,
                uid,
            )

    transaction.on_commit(run, using=using)


def _remember_chat_user_state(sender: Any, instance: Any, raw: bool = False, **kwargs: Any) -> None:
    """``pre_save`` on the user model: note the chat-user operations the save calls for."""
    from .conf import get_service, setting

    update = setting("update_chat_user_on_save", False)
    deactivate = setting("deactivate_chat_user_on_inactive", False)
    if raw or instance.pk is None or not (update or deactivate):
        return
    old = type(instance)._default_manager.using(kwargs.get("using")).filter(pk=instance.pk).first()
    if old is None:
        return
    due = []
    if deactivate and getattr(old, "is_active", True) and not getattr(instance, "is_active", True):
        due.append("deactivate")
    elif update and chat_users.profile_changed(get_service(), old, instance):
        due.append("update")
    instance._chatauth_chat_user_due = due


def chat_user_on_save(sender: Any, instance: Any, **kwargs: Any) -> None:
    """``post_save`` on the user model: run what :func:`_remember_chat_user_state` noted."""
    due = getattr(instance, "_chatauth_chat_user_due", None)
    if not due:
        return
    del instance._chatauth_chat_user_due
    for operation in due:
        _chat_user_later(operation, instance, kwargs.get("using"))


def erase_chat_user_on_delete(sender: Any, instance: Any, **kwargs: Any) -> None:
    """``post_delete`` on the user model: erase the chat user (``ERASE_CHAT_USER_ON_DELETE``).

    The chat identity is mapped now, while the instance still has its primary key."""
    from .conf import get_service, setting

    if not setting("erase_chat_user_on_delete", False):
        return
    try:
        identity = get_service().identity_for(instance)
    except ChatAuthError as exc:
        logger.warning("chatauth could not map a deleted user to a chat user (%s)", exc.code)
        return
    _chat_user_later("erase", identity, kwargs.get("using"))


def connect() -> None:
    """Connect the receivers (called by the app's ``ready()``)."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.signals import user_logged_in, user_logged_out
    from django.db.models.signals import post_delete, post_save, pre_save

    user_logged_out.connect(end_chat_on_logout, dispatch_uid="chatauth.logout")
    user_logged_in.connect(end_chat_on_login, dispatch_uid="chatauth.login")
    user_model = get_user_model()
    pre_save.connect(
        _remember_password_change, sender=user_model, dispatch_uid="chatauth.password.pre"
    )
    post_save.connect(
        end_chat_on_password_change, sender=user_model, dispatch_uid="chatauth.password.post"
    )
    pre_save.connect(
        _remember_chat_user_state, sender=user_model, dispatch_uid="chatauth.chat_user.pre"
    )
    post_save.connect(chat_user_on_save, sender=user_model, dispatch_uid="chatauth.chat_user.post")
    post_delete.connect(
        erase_chat_user_on_delete, sender=user_model, dispatch_uid="chatauth.chat_user.delete"
    )
    from . import api

    api.connect()
