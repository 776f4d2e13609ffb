"""Encryption of stored OAuth and API tokens with the key from ``TOKEN_ENCRYPTION_KEY``.

Tokens are Fernet ciphertext in the database (AES-128-CBC with an HMAC-SHA256 tag), so a
database dump alone does not reveal them. Neither the key nor a token ever appears in an
error message.
"""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken

from jobs.errors import ConfigurationError, PermanentJobError
from jobs.settings import Settings

__all__ = ["TokenCipher", "cipher_from_settings", "generate_key"]


class TokenCipher:
    """Encrypts tokens before they are stored and decrypts them before use."""

    def __init__(self, fernet: Fernet) -> None:
        self._fernet = fernet

    def encrypt(self, token: str) -> str:
        """The ciphertext of ``token``, as text for a ``Text`` column."""
        return self._fernet.encrypt(token.encode()).decode("ascii")

    def decrypt(self, ciphertext: str) -> str:
        """The token behind ``ciphertext``; a clear error if it was made with another key."""
        try:
            return self._fernet.decrypt(ciphertext.encode("ascii")).decode()
        except (InvalidToken, UnicodeError, ValueError):
            raise PermanentJobError(
                "a stored token cannot be decrypted with TOKEN_ENCRYPTION_KEY "
                "(was the key changed?)"
            ) from None


def generate_key() -> str:
    """A new random key for ``TOKEN_ENCRYPTION_KEY``."""
    return Fernet.generate_key().decode("ascii")


def cipher_from_settings(settings: Settings) -> TokenCipher:
    """The cipher for ``TOKEN_ENCRYPTION_KEY``, or ConfigurationError if it is missing/invalid."""
    if settings.token_encryption_key is None:
        raise ConfigurationError(
            "TOKEN_ENCRYPTION_KEY is not set; the sync jobs need it to read stored tokens "
            '(create one with: python -c "from jobs.sync.tokens import generate_key; '
            'print(generate_key())")'
        )
    try:
        fernet = Fernet(settings.token_encryption_key.get_secret_value().encode("ascii"))
    except (ValueError, UnicodeError):
        raise ConfigurationError(
            "TOKEN_ENCRYPTION_KEY is not a valid key: it must be 32 url-safe base64-encoded bytes"
        ) from None
    return TokenCipher(fernet)
