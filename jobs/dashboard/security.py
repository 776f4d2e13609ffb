"""Access to the dashboard: off unless enabled, credentials, CSRF tokens, security headers.

Every page answers 404 while ``DASHBOARD_ENABLED`` is false. Then a request needs HTTP Basic
credentials matching ``DASHBOARD_USERNAME``/``DASHBOARD_PASSWORD`` — or, when a backend mounts
the dashboard with its own auth dependency, whatever that dependency accepts. Each browser gets
a signed session cookie; every form carries a CSRF token derived from that session (HMAC with
``DASHBOARD_SESSION_SECRET``), and a POST whose token does not match is refused before it does
anything. Every response carries a strict Content Security Policy (no inline script or style),
refuses framing and sniffing, and sends no referrer.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable, Coroutine
from typing import Any
from urllib.parse import parse_qs

from fastapi import Depends, HTTPException, Request, Response
from fastapi.routing import APIRoute
from fastapi.security import HTTPBasic, HTTPBasicCredentials

from jobs.errors import ConfigurationError
from jobs.settings import Settings

__all__ = ["CSRF_FIELD", "SECURITY_HEADERS", "SESSION_COOKIE", "Guard", "SecureRoute"]

SESSION_COOKIE = "jobs_dashboard_session"
CSRF_FIELD = "csrf_token"
#: Largest form body a dashboard action reads.
MAX_FORM_BYTES = 4096
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
}

Authorize = Callable[..., Any]


class SecureRoute(APIRoute):
    """A route whose every answer, errors included, carries :data:`SECURITY_HEADERS`."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """The handler, wrapped to add the headers."""
        handler = super().get_route_handler()

        async def secured(request: Request) -> Response:
            try:
                response = await handler(request)
            except HTTPException as error:
                raise HTTPException(
                    error.status_code,
                    error.detail,
                    headers={**(error.headers or {}), **SECURITY_HEADERS},
                ) from None
            response.headers.update(SECURITY_HEADERS)
            return response

        return secured


class Guard:
    """Who may see the dashboard, and the session and CSRF tokens of those who may."""

    def __init__(self, settings: Settings, authorize: Authorize | None = None) -> None:
        if settings.dashboard_enabled and authorize is None and settings.dashboard_password is None:
            raise ConfigurationError(
                "DASHBOARD_ENABLED needs DASHBOARD_USERNAME and DASHBOARD_PASSWORD (or the "
                "backend's own auth dependency)"
            )
        self.settings = settings
        secret = settings.dashboard_session_secret
        self._key = secret.get_secret_value().encode() if secret else secrets.token_bytes(32)
        self.authorize = authorize or self._basic_dependency()

    def dependencies(self) -> list[Any]:
        """The route dependencies, in order: enabled (else 404), then authorized (else 401)."""
        return [Depends(self.require_enabled), Depends(self.authorize)]

    def require_enabled(self) -> None:
        """404 while the dashboard is off, so it does not even say it exists."""
        if not self.settings.dashboard_enabled:
            raise HTTPException(404, "Not Found")

    def _basic_dependency(self) -> Authorize:
        basic = HTTPBasic(auto_error=False, realm="jobs dashboard")
        username = (self.settings.dashboard_username or "").encode()
        password = self.settings.dashboard_password

        def require_credentials(
            credentials: HTTPBasicCredentials | None = Depends(basic),  # noqa: B008 - FastAPI
        ) -> str:
            if credentials is not None and password is not None:
                user_ok = hmac.compare_digest(credentials.username.encode(), username)
                password_ok = hmac.compare_digest(
                    credentials.password.encode(), password.get_secret_value().encode()
                )
                if user_ok and password_ok:
                    return credentials.username
            raise HTTPException(
                401,
                "Wrong or missing credentials",
                headers={"WWW-Authenticate": 'Basic realm="jobs dashboard"'},
            )

        return require_credentials

    def _sign(self, purpose: str, value: str) -> str:
        return hmac.new(self._key, f"{purpose}:{value}".encode(), hashlib.sha256).hexdigest()

    def session_of(self, request: Request) -> str | None:
        """The session id of the request's signed cookie, or None when absent or forged."""
        cookie = request.cookies.get(SESSION_COOKIE, "")
        session, _, signature = cookie.partition(".")
        if session and hmac.compare_digest(signature, self._sign("session", session)):
            return session
        return None

    def ensure_session(self, request: Request, response: Response) -> str:
        """The request's session id; a new one is set as a cookie on ``response`` if needed."""
        session = self.session_of(request)
        if session is None:
            session = secrets.token_urlsafe(24)
            response.set_cookie(
                SESSION_COOKIE,
                f"{session}.{self._sign('session', session)}",
                httponly=True,
                samesite="strict",
                secure=request.url.scheme == "https",
                path=request.scope.get("root_path") or "/",
            )
        return session

    def csrf_token(self, session: str) -> str:
        """The CSRF token of every form shown in ``session``."""
        return self._sign("csrf", session)

    async def checked_form(self, request: Request) -> dict[str, str]:
        """The POST's form fields, once its CSRF token matches its session; 403 otherwise."""
        body = await request.body()
        if len(body) > MAX_FORM_BYTES:
            raise HTTPException(413, "Form too large")
        fields = {
            key: values[0]
            for key, values in parse_qs(body.decode("utf-8", "replace")).items()
            if values
        }
        session = self.session_of(request)
        token = fields.get(CSRF_FIELD, "")
        if session is None or not hmac.compare_digest(token, self.csrf_token(session)):
            raise HTTPException(403, "CSRF token missing or invalid: reload the page and try again")
        return fields
