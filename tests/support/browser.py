"""One headless Chromium per test session, driven by Playwright, for the dashboard's e2e tests.

Debian's chromium is used through ``executable_path`` (``playwright install`` cannot download
browsers here). Pages get a fresh context each, so cookies never leak from one test to the next.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from playwright.sync_api import Browser, Page, expect, sync_playwright

EXECUTABLES = ("/usr/lib/chromium/chromium", "/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"


def chromium() -> str | None:
    return next((p for p in EXECUTABLES if Path(p).exists()), None)


@contextmanager
def launched() -> Iterator[Browser]:
    executable = chromium()
    if executable is None:
        raise RuntimeError("chromium is not installed: run scripts/setup (it installs it)")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, args=ARGS)
        try:
            yield browser
        finally:
            browser.close()


def screenshot(page: Page, name: str) -> Path:
    """Save a full-page PNG as test-artifacts/screenshots/<name>.png (README material)."""
    if not re.fullmatch(r"[a-z0-9-]+", name):
        raise ValueError(f"screenshot name {name!r}: use lower-case letters, digits and '-'")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def log_in(page: Page, url: str, token: str, user: str) -> None:
    """Open ``url`` logged out, get sent to the login form, log in with ``token`` and land as
    ``user``."""
    page.goto(url)
    expect(page).to_have_url(re.compile(r"/ui/login\?next="))
    page.get_by_label("API token").fill(token)
    page.get_by_role("button", name="Log in").click()
    expect(page.locator(".who .user")).to_have_text(user)
