"""Encryption of stored OAuth and API tokens with the key from ``TOKEN_ENCRYPTION_KEY``.

Tokens are Fernet ciphertext in the database (AES-128-CBC with an HMAC-SHA256 tag), so a
database dump alone does not reveal them. Neither a key nor a token ever appears in an
error message.

Keys rotate: ``TOKEN_ENCRYPTION_KEY`` encrypts every new token, and the keys listed in
``TOKEN_ENCRYPTION_OLD_KEYS`` still decrypt the tokens stored before the change (MultiFernet),
until ``python -m jobs tokens rotate`` has re-encrypted them with the current key.
"""

from __future__ import annotations

import enum

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from jobs.errors import ConfigurationError, PermanentJobError
from jobs.settings import Settings

__all__ = ["KeyOfToken", "TokenCipher", "cipher_from_settings", "generate_key"]

_UNREADABLE = (
    "a stored token cannot be decrypted with TOKEN_ENCRYPTION_KEY or TOKEN_ENCRYPTION_OLD_KEYS "
    "(was the key changed without keeping the old one?)"
)


class KeyOfToken(enum.Enum):
    """Which configured key a stored token was encrypted with."""

    CURRENT = "current"
    OLD = "old"
    NONE = "none"


class TokenCipher:
    """Encrypts tokens with the current key; decrypts them with the current or an old key."""

    def __init__(self, current: Fernet, old: tuple[Fernet, ...] = ()) -> None:
        self._current = current
        self._all = MultiFernet([current, *old])

    def encrypt(self, token: str) -> str:
        """The ciphertext of ``token`` under the current key, as text for a ``Text`` column."""
        return self._current.encrypt(token.encode()).decode("ascii")

    def decrypt(self, ciphertext: str) -> str:
        """The token behind ``ciphertext``; a clear error if no configured key made it."""
        try:
            return self._all.decrypt(ciphertext.encode("ascii")).decode()
        except (InvalidToken, UnicodeError, ValueError):
            raise PermanentJobError(_UNREADABLE) from None

    def key_of(self, ciphertext: str) -> KeyOfToken:
        """Whether ``ciphertext`` was made with the current key, an old one, or none of them."""
        for fernet, which in ((self._current, KeyOfToken.CURRENT), (self._all, KeyOfToken.OLD)):
            try:
                fernet.decrypt(ciphertext.encode("ascii"))
            except (InvalidToken, UnicodeError, ValueError):
                continue
            return which
        return KeyOfToken.NONE

    def rotate(self, ciphertext: str) -> str:
        """``ciphertext`` encrypted again under the current key (its original time kept)."""
        try:
            return self._all.rotate(ciphertext.encode("ascii")).decode("ascii")
        except (InvalidToken, UnicodeError, ValueError):
            raise PermanentJobError(_UNREADABLE) from None


def generate_key() -> str:
    """A new random key for ``TOKEN_ENCRYPTION_KEY``."""
    return Fernet.generate_key().decode("ascii")


def _fernet(key: str, what: str) -> Fernet:
    try:
        return Fernet(key.encode("ascii"))
    except (ValueError, UnicodeError):
        raise ConfigurationError(
            f"{what} is not a valid key: it must be 32 url-safe base64-encoded bytes"
        ) from None


def cipher_from_settings(settings: Settings) -> TokenCipher:
    """The cipher of the configured keys, or ConfigurationError if one is missing/invalid."""
    if settings.token_encryption_key is None:
        raise ConfigurationError(
            "TOKEN_ENCRYPTION_KEY is not set; the sync jobs need it to read stored tokens "
            '(create one with: python -c "from jobs.sync.tokens import generate_key; '
            'print(generate_key())")'
        )
    current = _fernet(settings.token_encryption_key.get_secret_value(), "TOKEN_ENCRYPTION_KEY")
    old = tuple(
        _fernet(key, f"TOKEN_ENCRYPTION_OLD_KEYS: key {number}")
        for number, key in enumerate(settings.old_token_keys, start=1)
    )
    return TokenCipher(current, old)
