"""Headless Chromium for the browser tests: Debian's ``chromium`` driven by Playwright.

Playwright's own browser download (``playwright install``) is not used: the tests launch the
system Chromium through ``executable_path``. Without Chromium a test is skipped with the reason,
except on CI (``CI=true``), where a missing browser fails: ``.ci/run`` installs it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile

import pytest

#: Flags that work in this project's containers (no sandbox, no GPU, no network chatter).
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def chromium_path() -> str:
    """The system Chromium; skips the test without it, fails on CI."""
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        message = "chromium is not installed (apt-get install -y chromium chromium-driver)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{message}: on CI .ci/run must install it")
        pytest.skip(message)
    return path


@contextlib.contextmanager
def chromium_context(viewport: dict | None = None):
    """A fresh headless Chromium profile (Playwright BrowserContext), closed on exit."""
    from playwright.sync_api import sync_playwright

    executable = chromium_path()
    with sync_playwright() as playwright, tempfile.TemporaryDirectory(prefix="rsd-mini-chromium-") as profile:
        context = playwright.chromium.launch_persistent_context(
            profile, executable_path=executable, headless=True, args=CHROMIUM_FLAGS,
            viewport=viewport or {"width": 1280, "height": 900})
        try:
            yield context
        finally:
            context.close()


def watch_console(page) -> list[str]:
    """Collects the page's console errors, uncaught exceptions and failed requests, as text,
    into the returned list."""
    errors: list[str] = []
    page.on("console", lambda message: errors.append(f"console.{message.type}: {message.text}")
            if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(f"uncaught: {error}"))
    page.on("requestfailed", lambda request: errors.append(f"request failed: {request.url} ({request.failure})"))
    return errors
