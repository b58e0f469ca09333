"""Debian's Chromium driven by Playwright for Python, for the dashboard's tests and benchmark.

Headless, a fresh profile each time, no background networking: the browser talks only to the
app under test. Under CI=true a missing chromium fails the test (tests.services.require)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager

from tests.services import require

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
DESKTOP = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}


def require_chromium() -> None:
    require(
        f"Chromium at {CHROMIUM} and Playwright", bool(shutil.which(CHROMIUM)) and _playwright()
    )


def _playwright() -> bool:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return False
    return True


@contextmanager
def chromium() -> Iterator:
    """Headless Chromium; Playwright's `launch` gives it a fresh user data dir of its own
    (deleted at close), so no profile, cache or cookie survives from one run to the next."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            yield browser
        finally:
            browser.close()


def log_in(page, base_url: str, username: str, password: str) -> None:
    """Through Django's admin login form (staff accounts only), as a person would."""
    page.goto(f"{base_url}/admin/login/?next=/dashboard/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.press("#id_password", "Enter")
    page.wait_for_load_state("load")
