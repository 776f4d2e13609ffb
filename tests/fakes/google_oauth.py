"""The fake Google's OAuth side: the token endpoint and the grants it knows.

A refresh needs the right client id and secret (401 ``invalid_client`` otherwise, as when
``GOOGLE_CLIENT_SECRET`` is wrong) and a refresh token that was not revoked (400
``invalid_grant``); access tokens expire after ``access_token_lifetime`` seconds.
"""

from __future__ import annotations

import secrets
import time
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

__all__ = ["FakeGoogleOAuth"]


class FakeGoogleOAuth:
    """Grants, access tokens and the token endpoint."""

    def __init__(self, *, client_id: str, client_secret: str) -> None:
        self.client_id, self.client_secret = client_id, client_secret
        self.refresh_tokens: set[str] = set()
        self.access_tokens: dict[str, float] = {}  # token -> monotonic expiry
        self.access_token_lifetime = 3600
        self.refreshes = 0

    def valid_access_token(self, token: str) -> bool:
        """Whether ``token`` was issued and has not expired."""
        return self.access_tokens.get(token, 0) > time.monotonic()

    def grant(self, *, access_lifetime: float | None = None) -> tuple[str, str]:
        """A new (access token, refresh token) pair, as after the user's consent."""
        refresh, access = "1//" + secrets.token_urlsafe(16), "ya29." + secrets.token_urlsafe(16)
        self.refresh_tokens.add(refresh)
        self.access_tokens[access] = time.monotonic() + (
            self.access_token_lifetime if access_lifetime is None else access_lifetime
        )
        return access, refresh

    def revoke(self, refresh_token: str) -> None:
        """Revoke a grant: its refresh token now gets ``invalid_grant``."""
        self.refresh_tokens.discard(refresh_token)

    def expire_access_tokens(self) -> None:
        """Every access token issued so far is now expired (401)."""
        self.access_tokens.clear()

    async def token_endpoint(self, request: Request) -> Response:
        """``POST {token_url}``: refresh an access token."""
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
        if form.get("grant_type") != "refresh_token":
            return JSONResponse({"error": "unsupported_grant_type"}, status_code=400)
        if (
            form.get("client_id") != self.client_id
            or form.get("client_secret") != self.client_secret
        ):
            return JSONResponse(
                {"error": "invalid_client", "error_description": "Unauthorized"}, status_code=401
            )
        if form.get("refresh_token") not in self.refresh_tokens:
            return JSONResponse(
                {
                    "error": "invalid_grant",
                    "error_description": "Token has been expired or revoked.",
                },
                status_code=400,
            )
        self.refreshes += 1
        access = "ya29." + secrets.token_urlsafe(16)
        self.access_tokens[access] = time.monotonic() + self.access_token_lifetime
        return JSONResponse(
            {
                "access_token": access,
                "expires_in": self.access_token_lifetime,
                "token_type": "Bearer",
                "scope": "https://www.googleapis.com/auth/calendar.readonly",
            }
        )
