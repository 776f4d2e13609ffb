"""The dashboard's stylesheet and script, served from the package (no CDN, no build step)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, HTTPException
from fastapi.responses import Response

from jobs.dashboard.context import Dashboard

__all__ = ["add_routes"]

STATIC = Path(__file__).resolve().parent.parent / "static"
MEDIA_TYPES = {
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
}
FILES = {path.name: path for path in STATIC.iterdir() if path.suffix in MEDIA_TYPES}


def add_routes(router: APIRouter, dash: Dashboard) -> None:
    """``GET /static/{name}`` for the files shipped in ``jobs/dashboard/static``."""

    @router.get("/static/{name}", name="dashboard-static")
    async def static_file(name: str) -> Response:
        """One shipped file; 404 for any other name."""
        path = FILES.get(name)
        if path is None:
            raise HTTPException(404, "Not Found")
        return Response(
            path.read_bytes(),
            media_type=MEDIA_TYPES[path.suffix],
            headers={"Cache-Control": "max-age=300"},
        )
