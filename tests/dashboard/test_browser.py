"""The staff dashboard in headless Chromium over the real shop (issue 14).

One stack for the module (tests/dashboard/stack.py): gunicorn on PostgreSQL and Redis, a
Celery worker, `monitor run` scraping every second, and simulated shop traffic; the tests wait
until the monitor has a value for every overview panel's expression, then look at the pages as
staff would. Screenshots at desktop and phone widths go to $DASHBOARD_ARTEFACTS
(default build/artefacts/).
"""

from __future__ import annotations

import time

import httpx
import pytest

from dashboard import panels
from monitoring.rules.alerting import fingerprint
from tests.dashboard.browser import DESKTOP, PHONE, chromium, log_in, require_chromium
from tests.dashboard.stack import CUSTOMER, STAFF, Stack, artefacts_dir
from tests.gunicorn import TOKEN

pytestmark = [pytest.mark.browser, pytest.mark.slow]

DRAWN_MS = 60_000  # a loaded machine may take a while; the benchmark holds the 1 s goal


def _overview_exprs() -> list[str]:
    return [q.expr for p in panels.overview() for q in p.queries]


def _has_value(monitor, expr: str) -> bool:
    body = monitor.client.get("/api/v1/query", params={"query": expr}).json()
    return body["status"] == "success" and bool(body["data"]["result"])


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    require_chromium()
    with Stack(tmp_path_factory.mktemp("dashboard")) as running:
        traffic = running.traffic(600)
        try:
            # Every overview panel needs data: orders paid (business), rates over two scrapes.
            missing = _overview_exprs()
            deadline = time.monotonic() + 240
            while missing and time.monotonic() < deadline:
                missing = [e for e in missing if not _has_value(running.monitor, e)]
                time.sleep(1)
            assert not missing, f"no data in the monitor for {missing}"
            yield running
        finally:
            traffic.terminate()
            traffic.wait()


@pytest.fixture(scope="module")
def browser(stack):
    with chromium() as b:
        yield b


@pytest.fixture
def staff_page(browser, stack):
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    log_in(page, stack.app.base_url, *STAFF)
    yield page
    context.close()


def _drawn(page) -> None:
    page.wait_for_function("document.documentElement.dataset.drawn", timeout=DRAWN_MS)


def _shoot(page, name: str) -> None:
    page.screenshot(path=str(artefacts_dir() / f"dashboard-{name}.png"), full_page=True)


def _panel_report(page) -> list[dict]:
    return page.eval_on_selector_all(
        "[data-panel]",
        """nodes => nodes.map(n => ({id: n.dataset.panel, kind: n.className,
            state: n.dataset.state || '', points: Number(n.dataset.points || 0),
            text: n.innerText, tiles: n.querySelectorAll('.tile').length}))""",
    )


def test_overview_shows_every_panel_with_data(staff_page, stack):
    page = staff_page
    page.goto(f"{stack.app.base_url}/dashboard/?range=900")
    _drawn(page)
    report = {r["id"]: r for r in _panel_report(page)}
    expected = panels.overview()
    assert [p.id for p in expected] == [i for i in report if i != "firing"]
    for panel in expected:
        got = report[panel.id]
        if panel.kind == "stat":
            assert got["state"] in ("ok", "warn", "crit"), got
            assert "no data" not in got["text"] and "error" not in got["text"], got
        elif panel.kind == "chart":
            assert got["points"] > 0, got
        else:  # health: both scrape targets, the database, Redis, Celery, the collectors
            assert got["tiles"] >= 8 and ": unknown" not in got["text"], got
            for component in ("database", "redis", "celery broker"):
                assert f"{component}: up" in got["text"], got
            # Up or down as the worker answered the last ping (slow on a loaded machine).
            assert "celery workers: " in got["text"], got
    # The Watchdog always fires: the firing list is read from the monitor.
    page.wait_for_selector('#firing [data-alertname="Watchdog"]')
    assert page.locator("#firing").get_attribute("aria-busy") == "false"
    _shoot(page, "overview-desktop")
    page.set_viewport_size(PHONE)
    page.reload()
    _drawn(page)
    # At phone width nothing is wider than the screen.
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    _shoot(page, "overview-phone")


def test_live_refresh_redraws_without_reloading(staff_page, stack):
    page = staff_page
    page.goto(f"{stack.app.base_url}/dashboard/?range=900")
    _drawn(page)
    page.evaluate("window.__same = true")
    page.wait_for_function(
        "Number(document.documentElement.dataset.refreshed || 0) >= 2", timeout=DRAWN_MS
    )
    assert page.evaluate("window.__same") is True  # the same document: refreshed in place
    assert page.locator("#updated").inner_text().startswith("updated")


@pytest.mark.parametrize("slug", [c.slug for c in panels.CATEGORIES if not c.pending])
def test_each_category_page_from_the_navigation(staff_page, stack, slug):
    page = staff_page
    page.goto(f"{stack.app.base_url}/dashboard/")
    _drawn(page)
    # Keyboard: focus the page's link and press Enter.
    link = page.locator(f'nav a[href="/dashboard/{slug}/"]')
    link.focus()
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/dashboard/{slug}/")
    if slug == "alerts":
        page.wait_for_function("document.documentElement.dataset.alertsDrawn", timeout=DRAWN_MS)
        assert page.locator('#groups [data-alertname="Watchdog"]').count() >= 1
    else:
        _drawn(page)
        report = _panel_report(page)
        assert [r["id"] for r in report] == [p.id for p in panels.category(slug)]
        assert not [r for r in report if r["state"] == "error" or "error:" in r["text"]], report
        with_data = [r for r in report if r["points"] > 0 or r["state"] in ("ok", "warn", "crit")]
        assert with_data, report
        # The range selector: the longest range redraws every chart.
        page.select_option("#range", index=page.locator("#range option").count() - 1)
        page.wait_for_function(
            "[...document.querySelectorAll('.panel.chart')].every(n => n.getAttribute('aria-busy') === 'false')"
        )
    _shoot(page, f"{slug}-desktop")
    page.set_viewport_size(PHONE)
    _shoot(page, f"{slug}-phone")


def _monitor_silence(stack, silence_id: str) -> dict:
    return stack.monitor.client.get(f"/api/v2/silence/{silence_id}").json()


def test_create_and_expire_a_silence_and_read_history(staff_page, stack):
    page = staff_page
    page.goto(f"{stack.app.base_url}/dashboard/alerts/")
    page.wait_for_function("document.documentElement.dataset.alertsDrawn", timeout=DRAWN_MS)
    row = page.locator('#groups li[data-alertname="Watchdog"]').first
    assert row.locator("a", has_text="Runbook").get_attribute("href") == (
        "/dashboard/runbooks/Watchdog/"
    )
    assert row.locator(".ack-slot").count() == 1  # where acknowledgement goes
    # Pending alerts (from /api/v1/alerts, which gives no fingerprint) get theirs in the page,
    # computed as the monitor's state file keys them, for their History button.
    labels = {"alertname": "Watchdog", "severity": "none", "team": "devops", "é": "ü"}
    assert page.evaluate("l => DASHBOARD.fingerprint(l)", labels) == fingerprint(labels)

    # History: the Watchdog's transitions from the monitor's state file.
    row.get_by_role("button", name="History").click()
    row.locator('.history li[data-kind="transition"]').first.wait_for()
    assert "→ firing" in row.locator(".history").inner_text()
    row.get_by_role("button", name="History").click()

    row.get_by_role("button", name="Silence…").click()
    assert 'alertname="Watchdog"' in page.input_value("#silence-form input[name=matchers]")
    page.fill("#silence-form input[name=comment]", "browser test")
    page.press("#silence-form input[name=comment]", "Enter")
    page.wait_for_selector("#silence-status:has-text('created')")
    silence_id = page.inner_text("#silence-status").split()[1]
    made = _monitor_silence(stack, silence_id)
    assert made["status"]["state"] == "active" and made["createdBy"] == STAFF[0]
    assert {"name": "alertname", "value": "Watchdog", "isRegex": False, "isEqual": True} in made[
        "matchers"
    ]
    page.wait_for_selector(f'tr[data-silence="{silence_id}"][data-state="active"]')
    # The notifier now holds the Watchdog as suppressed; the page shows it at its next read.
    deadline = time.monotonic() + 30
    while (
        "suppressed" not in page.locator('#groups li[data-alertname="Watchdog"]').first.inner_text()
    ):
        assert time.monotonic() < deadline, "the Watchdog never showed as silenced"
        page.evaluate("DASHBOARD.loadAlerts()")
        page.wait_for_timeout(500)

    page.locator(f'tr[data-silence="{silence_id}"] button', has_text="Expire").click()
    page.wait_for_selector(f'tr[data-silence="{silence_id}"][data-state="expired"]')
    assert _monitor_silence(stack, silence_id)["status"]["state"] == "expired"
    _shoot(page, "alerts-after-silence")


def _acknowledgements(stack) -> list[dict]:
    """The notifier's records, as the monitor's API gives them."""
    answer = stack.monitor.client.get("/api/v1/acknowledgements")
    assert answer.status_code == 200, answer.text
    return answer.json()["data"]


def test_a_notification_link_opens_the_alert_acknowledgement_form(staff_page, stack):
    """`alerts/#ack=<fingerprint>`, the link in Alertmanager's Slack messages: the page opens
    that alert's form, ready to type; a link to an alert not firing says so."""
    page = staff_page
    page.goto(f"{stack.app.base_url}/dashboard/alerts/")
    page.wait_for_function("document.documentElement.dataset.alertsDrawn", timeout=DRAWN_MS)
    fp = page.locator('#groups li[data-alertname="Watchdog"]').first.get_attribute(
        "data-fingerprint"
    )
    page.goto("about:blank")  # a new load, as from a chat message (not a same-page hash)
    page.goto(f"{stack.app.base_url}/dashboard/alerts/#ack={fp}")
    page.wait_for_function("document.documentElement.dataset.alertsDrawn", timeout=DRAWN_MS)
    row = page.locator(f'#groups li.linked[data-fingerprint="{fp}"]')
    assert row.count() == 1
    assert row.locator(".ack-form").count() == 1
    assert page.evaluate("document.activeElement.name") == "comment"
    assert "#" not in page.url  # followed once: a reload does not open it again
    page.keyboard.press("Escape")  # cancelled: nothing acknowledged
    assert row.locator(".ack-form").count() == 0
    assert not [a for a in _acknowledgements(stack) if a["fingerprint"] == fp]
    page.goto("about:blank")
    page.goto(f"{stack.app.base_url}/dashboard/alerts/#ack={'0' * 16}")
    page.wait_for_function("document.documentElement.dataset.alertsDrawn", timeout=DRAWN_MS)
    notice = page.locator("#ack-link")
    assert notice.is_visible()
    assert notice.inner_text() == "That alert is not firing now: nothing to acknowledge."


def test_a_notification_link_survives_the_sign_in(staff_page, browser, stack):
    """Opened signed out (a phone, a new browser), the link goes through the admin's sign-in
    and still lands on the alert's form."""
    staff_page.goto(f"{stack.app.base_url}/dashboard/alerts/")
    staff_page.wait_for_function("document.documentElement.dataset.alertsDrawn", timeout=DRAWN_MS)
    fp = staff_page.locator('#groups li[data-alertname="Watchdog"]').first.get_attribute(
        "data-fingerprint"
    )
    context = browser.new_context(viewport=PHONE)
    try:
        page = context.new_page()
        page.goto(f"{stack.app.base_url}/dashboard/alerts/#ack={fp}")
        page.wait_for_selector("#id_username")  # the admin's sign-in, the fragment kept
        page.fill("#id_username", STAFF[0])
        page.fill("#id_password", STAFF[1])
        page.press("#id_password", "Enter")
        page.wait_for_function("document.documentElement.dataset.alertsDrawn", timeout=DRAWN_MS)
        row = page.locator(f'#groups li.linked[data-fingerprint="{fp}"]')
        assert row.locator(".ack-form").count() == 1
        assert page.evaluate("document.activeElement.name") == "comment"
    finally:
        context.close()


def test_acknowledge_a_firing_alert_from_its_row(staff_page, stack):
    page = staff_page
    page.goto(f"{stack.app.base_url}/dashboard/alerts/")
    page.wait_for_function("document.documentElement.dataset.alertsDrawn", timeout=DRAWN_MS)
    row = page.locator('#groups li[data-alertname="Watchdog"]').first
    fp = row.get_attribute("data-fingerprint")
    assert fp and not [a for a in _acknowledgements(stack) if a["fingerprint"] == fp]
    # By keyboard: focus the row's button, Enter opens the comment, Enter acknowledges.
    opener = row.get_by_role("button", name="Acknowledge Watchdog")
    opener.focus()
    page.keyboard.press("Enter")
    comment = row.locator(".ack-form input[name=comment]")
    comment.wait_for()
    assert page.evaluate("document.activeElement.name") == "comment"
    page.keyboard.type("looking at the dead man's switch")
    page.keyboard.press("Enter")
    slot = row.locator('.ack-slot[data-acked="true"]')
    slot.wait_for(timeout=DRAWN_MS)
    assert f"acknowledged by {STAFF[0]} at" in slot.inner_text()
    assert "dead man's switch" in slot.inner_text()
    # In the notifier's records: the monitor's API over the same state file ...
    [made] = [a for a in _acknowledgements(stack) if a["fingerprint"] == fp]
    assert (made["by"], made["comment"], made["alertname"]) == (
        STAFF[0], "looking at the dead man's switch", "Watchdog",
    )  # fmt: skip
    # ... and still acknowledged after a reload (the page loads the current acknowledgements).
    page.reload()
    page.wait_for_function("document.documentElement.dataset.alertsDrawn", timeout=DRAWN_MS)
    row = page.locator(f'#groups li[data-fingerprint="{fp}"]').first
    assert f"acknowledged by {STAFF[0]}" in row.locator(".ack-slot").inner_text()
    assert row.get_by_role("button", name="Acknowledge Watchdog").count() == 0
    # The history lists the acknowledgement among the transitions, in time order.
    row.get_by_role("button", name="History").click()
    row.locator('.history li[data-kind="ack"]').wait_for()
    kinds = row.locator(".history li").evaluate_all("ns => ns.map(n => n.dataset.kind)")
    assert kinds.index("transition") < kinds.index("ack"), kinds
    assert f"acknowledged by {STAFF[0]}" in row.locator('.history li[data-kind="ack"]').inner_text()
    _shoot(page, "alerts-acknowledged")


def test_runbook_link_opens_the_runbook(staff_page, stack):
    page = staff_page
    page.goto(f"{stack.app.base_url}/dashboard/runbooks/Watchdog/")
    assert "Watchdog" in page.inner_text("main")


def test_anonymous_and_non_staff_are_refused(browser, stack):
    base = stack.app.base_url
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    page.goto(f"{base}/dashboard/")
    assert "/admin/login/" in page.url  # sent to the staff login, no dashboard
    assert page.locator("[data-panel]").count() == 0
    response = page.request.get(f"{base}/dashboard/api/v1/query?query=up")
    assert response.status == 401
    # A customer cannot log in through the staff login ...
    log_in(page, base, *CUSTOMER)
    assert "/admin/login/" in page.url
    # ... and with a customer's session (the shop's login API) the dashboard is 403.
    login = page.request.post(
        f"{base}/api/accounts/login/",
        data={"username": CUSTOMER[0], "password": CUSTOMER[1]},
    )
    assert login.ok, login.text()
    if not [c for c in context.cookies() if c["name"] == "sessionid"]:
        _customer_session(context, stack)
    answer = page.goto(f"{base}/dashboard/")
    assert answer.status == 403 and "Staff only" in page.content()
    assert page.request.get(f"{base}/dashboard/api/v1/query?query=up").status == 403
    assert page.request.get(f"{base}/dashboard/api/silences").status == 403
    context.close()
    # The monitoring token works without a session (for scripts), and never reaches the page.
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {TOKEN}"}) as client:
        assert client.get("/dashboard/api/v1/query", params={"query": "up"}).status_code == 200
        assert TOKEN not in client.get("/dashboard/").text


def _customer_session(context, stack) -> None:
    """A session for the customer (the shop's API login is token-based): made server-side."""
    key = stack.manage(
        "shell",
        "-c",
        "from django.contrib.auth import SESSION_KEY, BACKEND_SESSION_KEY, HASH_SESSION_KEY;"
        "from django.contrib.auth.models import User;"
        "from django.contrib.sessions.backends.db import SessionStore;"
        f"u = User.objects.get(username={CUSTOMER[0]!r}); s = SessionStore();"
        "s[SESSION_KEY] = str(u.pk);"
        "s[BACKEND_SESSION_KEY] = 'django.contrib.auth.backends.ModelBackend';"
        "s[HASH_SESSION_KEY] = u.get_session_auth_hash(); s.create(); print(s.session_key)",
    ).split()[-1]
    context.add_cookies([{"name": "sessionid", "value": key, "url": stack.app.base_url}])
