"""Keeping configured secrets out of messages that get logged, stored or traced.

The secrets are the values of every ``SecretStr`` setting and the passwords in the database
and Redis URLs, also in their URL-encoded forms (an upstream may echo a form body or a URL).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, quote_plus

from pydantic import SecretStr
from sqlalchemy.engine import make_url

from jobs.redis_connection import redis_options
from jobs.settings import Settings

__all__ = ["Redactor"]

MASK = "***"
#: Values that hold no text, left as they are without a look.
_PLAIN_TYPES = frozenset({int, float, bool, type(None)})


class Redactor:
    """Replaces every configured secret value in a text by ``***``."""

    def __init__(self, settings: Settings) -> None:
        secrets: set[str] = set()
        for name in type(settings).model_fields:
            value = getattr(settings, name)
            if isinstance(value, SecretStr) and value.get_secret_value():
                secrets.add(value.get_secret_value())
        secrets |= set(settings.old_token_keys)  # each key alone, not only the list
        passwords = (
            make_url(settings.resolved_database_url).password,
            redis_options(settings.redis_url).password,
        )
        secrets |= {str(password) for password in passwords if password}
        secrets |= {quote(secret, safe="") for secret in secrets}
        secrets |= {quote_plus(secret, safe="") for secret in secrets}
        # longest first, so a secret containing another is masked whole
        self._secrets = sorted(secrets, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        """``text`` with secrets masked."""
        for secret in self._secrets:
            text = text.replace(secret, MASK)
        return text

    def values(self, data: Any) -> Any:
        """``data`` (JSON-like: dicts, lists, strings) with secrets masked in every string."""
        if type(data) in _PLAIN_TYPES:
            return data
        if isinstance(data, str):
            return self(data)
        if isinstance(data, dict):
            return {
                key: value if type(value) in _PLAIN_TYPES else self.values(value)
                for key, value in data.items()
            }
        if isinstance(data, list | tuple):
            return [self.values(value) for value in data]
        return data
