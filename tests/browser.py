"""Headless Chromium from the system's ``chromium`` package, driven by Playwright.

Never a downloaded browser (no ``playwright install``): tests skip with a message when
``/usr/bin/chromium`` is missing, and fail in CI.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import uvicorn
from fastapi import FastAPI

from tests.conftest import service_missing
from tests.smtp_server import free_port

__all__ = ["CHROMIUM", "launch_chromium", "serve"]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _chromium_installed() -> bool:
    return CHROMIUM.exists()


@contextlib.asynccontextmanager
async def launch_chromium() -> AsyncIterator[object]:
    """A Playwright Chromium browser on the system's ``/usr/bin/chromium``."""
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        service_missing("Playwright for Python", "pip install -e '.[dev]'")
    if not _chromium_installed():
        service_missing(
            f"Chromium at {CHROMIUM}", "apt-get install -y --no-install-recommends chromium"
        )
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            await browser.close()


@contextlib.asynccontextmanager
async def serve(app: FastAPI) -> AsyncIterator[str]:
    """``app`` under uvicorn on a free local port, in this event loop; its base URL."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    task = asyncio.create_task(server.serve())
    try:
        for _ in range(200):
            if server.started:
                break
            assert not task.done(), "uvicorn stopped before it started"
            await asyncio.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 30)
