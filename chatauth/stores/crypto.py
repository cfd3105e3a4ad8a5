"""Encrypting token payloads at rest with Fernet (the ``STORE_ENCRYPTION_KEY`` setting).

Fernet is AES-128-CBC with an HMAC-SHA256 over the whole message, from the ``cryptography``
package (https://cryptography.io/en/latest/fernet/): a tampered or wrongly-keyed payload fails
its MAC instead of decrypting to garbage. Several keys may be given for rotation, newest
first: the first one encrypts, every one of them decrypts (``MultiFernet``).

This module imports ``cryptography``; chatauth imports it only when a key is configured, so
``import chatauth`` stays light. Install it with ``pip install 'chatauth-middleware[redis]'``.
"""

from __future__ import annotations

from collections.abc import Sequence

from chatauth.errors import ConfigurationError

try:
    from cryptography.fernet import Fernet, InvalidToken, MultiFernet
except ImportError as exc:  # pragma: no cover - depends on installed extras
    raise ImportError(
        "STORE_ENCRYPTION_KEY needs the cryptography package: "
        "pip install 'chatauth-middleware[redis]'"
    ) from exc

__all__ = ["FernetCipher", "generate_key"]

SETTING = "STORE_ENCRYPTION_KEY"


def generate_key() -> str:
    """A new random Fernet key (url-safe base64 of 32 bytes) as text, for the settings."""
    return Fernet.generate_key().decode("ascii")


def _split(key: str | bytes | Sequence[str | bytes]) -> list[bytes]:
    if isinstance(key, bytes):
        key = key.decode("ascii", errors="replace")
    items = key.split(",") if isinstance(key, str) else list(key)
    keys = []
    for item in items:
        text = item.decode("ascii", errors="replace") if isinstance(item, bytes) else str(item)
        if text.strip():
            keys.append(text.strip().encode("ascii", errors="replace"))
    return keys


class FernetCipher:
    """A :class:`~chatauth.stores.base.TokenCipher` over Fernet, with key rotation.

    Args:
        key: one Fernet key (the text ``generate_key()`` prints), a comma-separated string of
            keys, or a list of keys. The first key encrypts; all of them decrypt, so a new key
            can be put in front while tokens written under the old one stay readable until
            they expire.

    Raises:
        ConfigurationError: no key, or a key that is not a Fernet key. The message names the
            setting and which key (by position) is malformed, never its value.
    """

    def __init__(self, key: str | bytes | Sequence[str | bytes]) -> None:
        keys = _split(key)
        if not keys:
            raise ConfigurationError(f"{SETTING} is empty.", setting=SETTING)
        fernets = []
        for position, raw in enumerate(keys, start=1):
            try:
                fernets.append(Fernet(raw))
            except (ValueError, TypeError):
                raise ConfigurationError(
                    f"{SETTING} key #{position} is not a Fernet key (url-safe base64 of 32 "
                    "bytes). Generate one with: chatauth generate-key",
                    setting=SETTING,
                ) from None
        self._fernet = MultiFernet(fernets)
        self.key_count = len(fernets)

    def __repr__(self) -> str:
        return f"<FernetCipher keys={self.key_count}>"

    def encrypt(self, data: bytes) -> bytes:
        """Encrypt ``data`` with the first key; returns a Fernet token (url-safe base64)."""
        return self._fernet.encrypt(data)

    def decrypt(self, data: bytes) -> bytes:
        """Decrypt a payload written by :meth:`encrypt` under any of the configured keys.

        Raises:
            ConfigurationError: no configured key opens it: the key is wrong, the key that
                wrote it was removed from the rotation, or the store holds payloads written
                without encryption.
        """
        try:
            return self._fernet.decrypt(data)
        except InvalidToken:
            raise ConfigurationError(
                f"A stored chat token cannot be decrypted with {SETTING}: the key is wrong, "
                "the key that wrote it was dropped from the rotation, or the store was written "
                "without encryption. Restore the old key (list it after the new one), or clear "
                "the store so tokens are issued again.",
                setting=SETTING,
            ) from None

    def rotate(self, data: bytes) -> bytes:
        """Re-encrypt a payload under the first key (it may have been written under any)."""
        try:
            return self._fernet.rotate(data)
        except InvalidToken:
            raise ConfigurationError(
                f"A stored chat token cannot be decrypted with {SETTING}.", setting=SETTING
            ) from None
