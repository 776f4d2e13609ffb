"""The shared ``httpx.AsyncClient`` of a worker process."""

from __future__ import annotations

import httpx

from jobs.settings import Settings

__all__ = ["create_http_client"]


def create_http_client(settings: Settings) -> httpx.AsyncClient:
    """One client per worker process, with timeouts and connection limits from the settings."""
    return httpx.AsyncClient(
        timeout=httpx.Timeout(settings.http_timeout, connect=min(10.0, settings.http_timeout)),
        limits=httpx.Limits(
            max_connections=settings.http_max_connections,
            max_keepalive_connections=max(1, settings.http_max_connections // 5),
        ),
        headers={"User-Agent": "assistant-jobs/0.1"},
        follow_redirects=False,
    )
