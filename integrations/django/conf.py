"""Reading ``settings.CHATAUTH`` into one :class:`~chatauth.service.ChatAuth` per process.

``CHATAUTH`` takes the core settings (see :mod:`chatauth.config`) plus these Django-only keys:

=================================== =============================================================
``STORE``                           ``"django"`` (default): the ORM store in the app's database;
                                    or any store URL of :mod:`chatauth.config` / a store instance
``END_SESSIONS_ON_PASSWORD_CHANGE`` end all chat sessions of a user whose password changes
                                    (default ``True``), like Django ending the other app sessions
``UPDATE_CHAT_USER_ON_SAVE``        push the chat display name and avatar when a saved user's
                                    mapped ``NAME_ATTRIBUTE``/``AVATAR_ATTRIBUTE`` changed
                                    (default ``False``)
``DEACTIVATE_CHAT_USER_ON_INACTIVE`` deactivate the chat user when ``is_active`` becomes false
                                    (default ``False``)
``ERASE_CHAT_USER_ON_DELETE``       erase the chat user when the user is deleted (default
                                    ``False``)
=================================== =============================================================

The three chat-user keys run :mod:`chatauth.chat_users` operations after the transaction
commits; a failure never breaks the save (the provider's is queued for ``revoke-pending``).

The settings are read once (at start-up, by the app's ``ready()``) and cached; a change
through ``override_settings`` rebuilds them, so tests can switch providers.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from chatauth import settings as readers
from chatauth.config import from_settings
from chatauth.deprecation import deprecated_aliases
from chatauth.errors import ConfigurationError
from chatauth.service import ChatAuth
from chatauth.stores.base import BaseStore, TokenCipher

__all__ = [
    "DJANGO_KEYS",
    "ChatAuthImproperlyConfigured",
    "build_chatauth",
    "get_service",
    "reset",
    "user_settings",
]

#: Keys of ``CHATAUTH`` that only the Django adapter reads.
DJANGO_KEYS = frozenset(
    {
        "end_sessions_on_password_change",
        "update_chat_user_on_save",
        "deactivate_chat_user_on_inactive",
        "erase_chat_user_on_delete",
    }
)
#: The opt-in keys of the chat-user operations, and the operation each one runs.
CHAT_USER_KEYS = {
    "update_chat_user_on_save": "update",
    "deactivate_chat_user_on_inactive": "deactivate",
    "erase_chat_user_on_delete": "erase",
}
ORM_STORE = "django"


class ChatAuthImproperlyConfigured(ImproperlyConfigured):
    """``CHATAUTH`` is missing or wrong. ``check_id`` is the system check reporting it
    (``chatauth.E001`` ...), ``setting`` the offending key; the message never shows a value."""

    def __init__(self, message: str, *, check_id: str, setting: str | None = None) -> None:
        super().__init__(message)
        self.check_id = check_id
        self.setting = setting


def user_settings() -> dict[str, Any]:
    """``settings.CHATAUTH`` with lower-case keys.

    Raises:
        ChatAuthImproperlyConfigured: missing (``E001``) or not a dict (``E008``).
    """
    raw = getattr(settings, "CHATAUTH", None)
    if raw is None:
        raise ChatAuthImproperlyConfigured(
            "The CHATAUTH setting is missing.", check_id="chatauth.E001", setting="CHATAUTH"
        )
    if not isinstance(raw, Mapping):
        raise ChatAuthImproperlyConfigured(
            "The CHATAUTH setting must be a dict.", check_id="chatauth.E008", setting="CHATAUTH"
        )
    return {str(key).lower(): value for key, value in raw.items()}


def _orm_cipher(key: str | bytes | None) -> TokenCipher | None:
    if not key:
        return None
    try:
        from chatauth.stores.crypto import FernetCipher  # type: ignore[import-not-found,unused-ignore]
    except ImportError as exc:
        raise ConfigurationError(
            "STORE_ENCRYPTION_KEY needs the cryptography package: "
            "pip install 'chatauth-middleware[redis]'",
            setting="STORE_ENCRYPTION_KEY",
        ) from exc
    cipher: TokenCipher = FernetCipher(key)
    return cipher


def _classify(exc: ConfigurationError) -> str:
    if exc.setting == "PROVIDER":
        return "chatauth.E001"
    if exc.code == "ERROR_API_KEY_NOT_FOUND":
        return "chatauth.E002"
    if exc.setting in ("STORE", "STORE_ENCRYPTION_KEY"):
        return "chatauth.E005"
    if exc.setting in ("UID_MAPPER", "NAME_ATTRIBUTE", "AVATAR_ATTRIBUTE"):
        return "chatauth.E006"
    return "chatauth.E007"


def build_chatauth(**overrides: Any) -> ChatAuth:
    """A new :class:`ChatAuth` from ``settings.CHATAUTH`` (``overrides`` go to
    :func:`chatauth.config.from_settings`, e.g. ``transport=``).

    Raises:
        ChatAuthImproperlyConfigured: with the check id of the problem.
    """
    cfg = user_settings()
    store = cfg.get("store")
    try:
        if store is None or (isinstance(store, str) and store.lower() == ORM_STORE):
            from .store import DEFAULT_TIMEOUT as STORE_DEFAULT_TIMEOUT
            from .store import DjangoStore

            cfg.pop("store", None)
            # The ORM store on SQLite waits for a locked database like the core's SQLite store.
            timeout = readers.store_timeout(cfg)
            cfg.pop("store_timeout", None)
            overrides.setdefault(
                "store",
                DjangoStore(
                    cipher=_orm_cipher(cfg.get("store_encryption_key")),
                    timeout=STORE_DEFAULT_TIMEOUT if timeout is None else timeout,
                ),
            )
            if "journal" not in cfg:
                cfg["journal"] = _orm_journal()
        elif not isinstance(store, (str, BaseStore)):
            raise ConfigurationError(
                "STORE must be 'django', a store URL or a store instance.", setting="STORE"
            )
        # The sweep's idle bound is the app session's age: a chat session not served for that
        # long belongs to an app session that has expired.
        cfg.setdefault("session_idle", settings.SESSION_COOKIE_AGE)
        return from_settings(cfg, ignore=DJANGO_KEYS, **overrides)
    except ConfigurationError as exc:
        raise ChatAuthImproperlyConfigured(
            f"CHATAUTH: {exc.message}", check_id=_classify(exc), setting=exc.setting
        ) from exc


def _orm_journal() -> str | bool:
    """The ORM store's journal: next to the default database when it is an SQLite file (one
    machine, as the journal), else off (``False``): a server database serves many machines
    and each needs its own local ``JOURNAL`` path, so that choice is the deployment's."""
    db = settings.DATABASES.get("default", {})
    name = str(db.get("NAME") or "")
    if db.get("ENGINE", "").endswith("sqlite3") and name and "memory" not in name:
        return name + ".chatauth-ends"
    return False


_lock = threading.Lock()
_instance: ChatAuth | None = None


def get_service() -> ChatAuth:
    """The process's :class:`ChatAuth`, built from ``settings.CHATAUTH`` on first use (also
    ``chatauth.integrations.django.get_service``).

    Raises:
        ChatAuthImproperlyConfigured: the settings are wrong (``manage.py check`` says how).
    """
    global _instance
    instance = _instance
    if instance is None:
        with _lock:
            if _instance is None:
                _instance = _connect_signals(build_chatauth())
            instance = _instance
    return instance


def _connect_signals(chatauth: ChatAuth) -> ChatAuth:
    from .signals import chatauth_hooks

    chatauth.on_token_issued.append(chatauth_hooks.token_issued)
    chatauth.on_session_ended.append(chatauth_hooks.session_ended)
    chatauth.on_chat_user_changed.append(chatauth_hooks.chat_user_changed)
    return chatauth


def reset() -> None:
    """Forget the cached :class:`ChatAuth` (closing its HTTP client); the next
    :func:`get_service` reads the settings again."""
    global _instance
    with _lock:
        instance, _instance = _instance, None
    if instance is not None:
        instance.close()


def setting(key: str, default: Any) -> Any:
    """One Django-only ``CHATAUTH`` key (lower-case name), or ``default``."""
    try:
        return user_settings().get(key, default)
    except ChatAuthImproperlyConfigured:
        return default


__getattr__ = deprecated_aliases(
    __name__, {"get_chatauth": ("chatauth.integrations.django.conf", "get_service")}
)
