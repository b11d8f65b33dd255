"""Headless Chromium for the tests, driven by Playwright.

Two ways in: :func:`launched_chromium` (async API) backs the session fixture ``browser``, which
shares pytest-asyncio's session event loop, so tests using it are ``async def``.
:func:`running_chromium` (sync API) is for a plain test that opens and closes a browser within
its own body; the sync API must not outlive that test, because while it lives it keeps its own
event loop marked as running in the main thread and every async test after it would fail.

The browser is Debian's ``/usr/bin/chromium`` (package ``chromium``), never a build that
Playwright downloads: ``playwright install`` is not needed and not run. Set
``WAYHOME_TEST_CHROMIUM`` to use another Chromium binary.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from tests.services.process import ServiceError

if TYPE_CHECKING:
    from playwright.async_api import Browser as AsyncBrowser
    from playwright.sync_api import Browser

log = logging.getLogger(__name__)

DEFAULT_CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> Path:
    """The Chromium executable the tests drive."""
    path = Path(os.environ.get("WAYHOME_TEST_CHROMIUM", DEFAULT_CHROMIUM))
    if not path.exists():
        raise ServiceError(
            f"Chromium is not at {path}; install the Debian package chromium (scripts/install "
            "does) or set WAYHOME_TEST_CHROMIUM to a Chromium binary."
        )
    return path


@contextlib.contextmanager
def running_chromium() -> Iterator[Browser]:
    """A headless Chromium for the length of a ``with`` block (Playwright sync API).

    Use it from plain, non-async code: the sync API runs its own event loop and refuses to
    start inside a running one.
    """
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import sync_playwright

    executable = chromium_path()
    started = time.monotonic()
    with sync_playwright() as playwright:
        try:
            browser = playwright.chromium.launch(
                executable_path=str(executable), args=CHROMIUM_ARGS, headless=True
            )
        except PlaywrightError as exc:
            raise ServiceError(f"Chromium at {executable} could not start: {exc}") from None
        log.info("Chromium %s started in %.1f s", browser.version, time.monotonic() - started)
        try:
            yield browser
        finally:
            browser.close()


@contextlib.asynccontextmanager
async def launched_chromium() -> AsyncIterator[AsyncBrowser]:
    """A headless Chromium for the length of an ``async with`` block (Playwright async API)."""
    from playwright.async_api import Error as PlaywrightError
    from playwright.async_api import async_playwright

    executable = chromium_path()
    started = time.monotonic()
    async with async_playwright() as playwright:
        try:
            browser = await playwright.chromium.launch(
                executable_path=str(executable), args=CHROMIUM_ARGS, headless=True
            )
        except PlaywrightError as exc:
            raise ServiceError(f"Chromium at {executable} could not start: {exc}") from None
        log.info("Chromium %s started in %.1f s", browser.version, time.monotonic() - started)
        try:
            yield browser
        finally:
            await browser.close()
