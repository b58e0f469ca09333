"""RUM in a real browser: headless Chromium (Debian's, driven by Playwright) loads the storefront
served by gunicorn; the beacons arrive and the histograms show them; with the beacon endpoint
or the script blocked (an ad blocker) the pages still work and throw nothing."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.gunicorn import ROOT, Gunicorn, single_process
from tests.services import require
from tests.wait import wait_for

pytestmark = pytest.mark.slow

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _playwright():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sync_playwright = None
    require("Playwright for Python", sync_playwright is not None)
    require(f"Chromium at {CHROMIUM}", Path(CHROMIUM).exists() and bool(shutil.which(CHROMIUM)))
    return sync_playwright


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("storefront")
    app = Gunicorn(tmp, workers=1, RUM_RATE_PER_MINUTE="600")
    app.migrate()
    subprocess.run(
        [sys.executable, "manage.py", "load_demo_catalog"],
        cwd=ROOT, env=single_process(app.env), check=True, timeout=120, capture_output=True,
    )  # fmt: skip
    with app:
        yield app


@pytest.fixture(scope="module")
def browser():
    sync_playwright = _playwright()
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield chromium
        chromium.close()


def _metric(shop: Gunicorn, name: str, **labels: str) -> float:
    total = 0.0
    for family in text_string_to_metric_families(shop.scrape_text()):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total


def _watch(page) -> dict[str, list]:
    seen: dict[str, list] = {"pageerrors": [], "console": []}
    page.on("pageerror", lambda exc: seen["pageerrors"].append(str(exc)))
    page.on("console", lambda msg: msg.type == "error" and seen["console"].append(msg.text))
    return seen


def test_beacons_from_real_page_views_reach_the_histograms(shop, browser):
    before = {
        page: _metric(shop, "rum_page_load_seconds_count", page=page)
        for page in ("home", "product", "login")
    }
    lcp_before = _metric(shop, "rum_lcp_seconds_count", page="home")
    errors_before = _metric(shop, "rum_js_errors_total", page="product")
    context = browser.new_context()
    page = context.new_page()
    seen = _watch(page)
    page.goto(shop.base_url + "/", wait_until="load")
    page.get_by_role("heading", name="Print shop catalog").wait_for()
    page.locator(".grid a").first.click()  # leaving home sends its beacon
    page.wait_for_load_state("load")
    # A script error on the product page, as a broken third-party script would throw.
    page.evaluate("setTimeout(() => { throw new Error('boom from a test') }, 0)")
    page.wait_for_timeout(50)  # lets the timer run; the assertion below polls the result
    page.goto(shop.base_url + "/login/", wait_until="load")
    page.goto("about:blank")  # leaving login sends its beacon
    # Closing the context can cancel a beacon still queued in the browser: close after it came.
    wait_for(
        lambda: all(
            _metric(shop, "rum_page_load_seconds_count", page=p) >= before[p] + 1 for p in before
        ),
        timeout=30,
        what="one page-load observation per page visited",
    )
    context.close()
    assert _metric(shop, "rum_lcp_seconds_count", page="home") >= lcp_before + 1
    assert _metric(shop, "rum_js_errors_total", page="product") >= errors_before + 1
    assert seen["pageerrors"] == ["boom from a test"]  # the test's own error, nothing else


# What blockers do to a beacon: sendBeacon stubbed to throw, the fetch to the endpoint refused.
# (Chromium sends a beacon outside Playwright's request interception and DevTools' blocked
# URLs, so the block is made where the page meets it.)
BLOCK_BEACONS = """
navigator.sendBeacon = function () { throw new TypeError("blocked by client"); };
const realFetch = window.fetch;
window.fetch = function (url) {
  if (String(url).indexOf("/api/rum/") >= 0) {
    return Promise.reject(new TypeError("Failed to fetch (blocked by client)"));
  }
  return realFetch.apply(this, arguments);
};
"""


def _block(context, what: str) -> list[str]:
    """Block the beacon or the script as an ad blocker does; what the block stopped."""
    aborted: list[str] = []
    if what == "endpoint":
        context.add_init_script(BLOCK_BEACONS)
        return aborted

    def block(route):
        aborted.append(route.request.url)
        route.abort()

    context.route("**/rum.js", block)
    return aborted


def _control_page_view(shop, browser, beacons_before: float) -> None:
    """One unblocked page view, waiting for its beacon before closing the context: closing it
    can cancel a beacon the browser has queued but not yet sent."""
    context = browser.new_context()
    page = context.new_page()
    page.goto(shop.base_url + "/cart/", wait_until="load")
    page.goto("about:blank")
    wait_for(lambda: _metric(shop, "rum_beacons_total") > beacons_before, what="the control beacon")
    context.close()


@pytest.mark.parametrize("blocked", ["endpoint", "script"])
def test_a_blocked_beacon_or_script_never_breaks_a_page(shop, browser, blocked):
    beacons_before = _metric(shop, "rum_beacons_total")
    context = browser.new_context()
    aborted = _block(context, blocked)
    page = context.new_page()
    seen = _watch(page)
    page.goto(shop.base_url + "/", wait_until="load")
    page.locator(".grid a").first.click()
    page.wait_for_load_state("load")
    page.get_by_role("button", name="Add to cart").click()
    page.wait_for_url("**/cart/")
    assert page.get_by_role("link", name="Checkout").is_visible()
    page.goto(shop.base_url + "/login/", wait_until="load")
    page.get_by_label("Username").fill("nobody")
    page.get_by_label("Password").fill("wrong-password")
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("alert").wait_for()
    assert seen["pageerrors"] == []
    # The only console errors are the failed requests themselves (and the login's 401).
    assert all("Failed to load resource" in text for text in seen["console"]), seen["console"]
    if blocked == "script":
        assert aborted and all(url.endswith("/rum.js") for url in aborted)

    page.goto("about:blank")
    context.close()

    # Control: a page view without the block; its beacon arrives, and it is the only one that
    # did: the five page views before it sent nothing past the block.
    _control_page_view(shop, browser, beacons_before)
    assert _metric(shop, "rum_beacons_total") == beacons_before + 1


def test_the_shipped_synthetic_checks_pass_against_the_running_shop(shop):
    """deploy/synthetic/checks.yml, resolved on this shop as the monitor resolves it: the
    specification's home page, API health and login checks all succeed."""
    from monitoring.synthetic import Prober, checks_load
    from monitoring.tsdb.store import SampleStore

    checks = checks_load(ROOT / "deploy/synthetic/checks.yml", base_url=shop.base_url)
    prober = Prober(SampleStore(retention_seconds=600), checks)
    try:
        for state in prober.states():
            prober.attempt(state)
            assert state.last.success, (state.check.name, state.last.error)
        assert {s.check.name for s in prober.states()} == {
            "homepage_load",
            "api_health",
            "user_login",
        }
    finally:
        prober.close()
