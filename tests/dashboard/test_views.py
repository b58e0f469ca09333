"""The dashboard's views without a browser: who is let in, what the proxy refuses, and that
every panel's expression parses, runs on the monitor's engine and names series that exist."""

from __future__ import annotations

import functools
import re
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.test import Client

from dashboard import panels
from dashboard.ranges import range_choices
from monitoring.rules.expr import MatSel, Sel, children, compile_expr

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "dashboard-test-token"


@pytest.fixture(autouse=True)
def _token(settings, monkeypatch):
    settings.MONITORING_TOKEN = TOKEN
    # Nothing listens here: proxy calls that get past validation answer 502, never hang.
    monkeypatch.setenv("MONITOR_LISTEN", "127.0.0.1:9")
    monkeypatch.delenv("PROMETHEUS_URL", raising=False)
    monkeypatch.delenv("ALERTMANAGER_URL", raising=False)


def _client(*, staff: bool) -> Client:
    client = Client()
    user = User.objects.create_user("staff" if staff else "customer", password="x", is_staff=staff)
    client.force_login(user)
    return client


PAGES = ["/dashboard/", *(f"/dashboard/{c.slug}/" for c in panels.CATEGORIES)]


@pytest.mark.parametrize("url", PAGES)
def test_pages_need_staff(url):
    anonymous = Client().get(url)
    assert anonymous.status_code == 302 and anonymous["Location"].startswith("/admin/login/")
    assert _client(staff=False).get(url).status_code == 403
    assert _client(staff=True).get(url).status_code == 200
    assert Client().get(url, HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 200
    wrong = Client().get(url, HTTP_AUTHORIZATION="Bearer nope")
    assert wrong.status_code == 302


@pytest.mark.parametrize(
    "url",
    ["/dashboard/api/v1/query?query=up", "/dashboard/api/silences", "/dashboard/api/alerts/groups"],
)
def test_api_refuses_with_401_and_403(url):
    anonymous = Client().get(url)
    assert anonymous.status_code == 401 and anonymous["WWW-Authenticate"].startswith("Bearer")
    assert _client(staff=False).get(url).status_code == 403


def test_the_token_never_reaches_the_page():
    page = _client(staff=True).get("/dashboard/").content.decode()
    assert TOKEN not in page


def test_proxy_refuses_unknown_endpoints_and_missing_query():
    staff = _client(staff=True)
    assert staff.get("/dashboard/api/v1/admin/tsdb/delete_series").status_code == 404
    missing = staff.get("/dashboard/api/v1/query")
    assert missing.status_code == 400 and missing.json()["error"] == "query is required"


def test_unreachable_monitor_is_a_502_with_the_reason():
    answer = _client(staff=True).get("/dashboard/api/v1/query", {"query": "up"})
    assert answer.status_code == 502
    assert "unreachable" in answer.json()["error"]


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"matchers": [], "duration_s": 3600, "comment": "x"}, "matchers"),
        ({"matchers": [{"value": "x"}], "duration_s": 3600, "comment": "x"}, "name"),
        (
            {"matchers": [{"name": "a", "value": "b"}], "duration_s": 5, "comment": "x"},
            "duration_s",
        ),
        (
            {"matchers": [{"name": "a", "value": "b"}], "duration_s": 3600, "comment": " "},
            "comment",
        ),
        ([], "object"),
    ],
)
def test_bad_silences_are_refused_with_the_reason(body, reason):
    client = Client(enforce_csrf_checks=True)
    answer = client.post(
        "/dashboard/api/silences", body, content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {TOKEN}",
    )  # fmt: skip
    assert answer.status_code == 400 and reason in answer.json()["error"]


def test_a_session_needs_the_csrf_token_to_silence():
    client = Client(enforce_csrf_checks=True)
    client.force_login(User.objects.create_user("s", password="x", is_staff=True))
    body = {"matchers": [{"name": "a", "value": "b"}], "duration_s": 3600, "comment": "x"}
    answer = client.post("/dashboard/api/silences", body, content_type="application/json")
    assert answer.status_code == 403
    assert client.delete("/dashboard/api/silences/abc").status_code == 403


def test_history_wants_a_fingerprint_and_reads_a_missing_file_as_empty(tmp_path, monkeypatch):
    monkeypatch.setenv("MONITOR_STATE_PATH", str(tmp_path / "none.sqlite3"))
    staff = _client(staff=True)
    assert staff.get("/dashboard/api/history/not-one").status_code == 400
    assert staff.get("/dashboard/api/history/0123456789abcdef").json() == {
        "alert": None,
        "events": [],
    }


def test_runbooks_are_served_and_names_confined():
    staff = _client(staff=True)
    assert b"Watchdog" in staff.get("/dashboard/runbooks/Watchdog/").content
    assert staff.get("/dashboard/runbooks/..%2Fsettings/").status_code == 404
    assert staff.get("/dashboard/runbooks/NoSuchAlert/").status_code == 404


def test_assets_are_served_by_the_app():
    answer = Client().get("/dashboard/static/vendor/uplot/uPlot.iife.min.js")
    assert answer.status_code == 200 and b"uPlot" in b"".join(answer.streaming_content)
    assert Client().get("/dashboard/static/../views.py").status_code in (400, 404)  # refused


def test_range_choices_end_at_the_retention():
    choices = range_choices(6 * 3600)
    assert [c["seconds"] for c in choices] == [900, 3600, 3 * 3600, 6 * 3600]
    assert choices[-1]["label"] == "all (6h)"


def _names(node) -> set[str]:
    if isinstance(node, MatSel):
        node = node.sel
    if isinstance(node, Sel):
        return {m.value for m in node.matchers if m.name == "__name__"}
    return set().union(*(_names(child) for child in children(node)))


@functools.cache
def _known_series() -> set[str]:
    """Every metric name written in the app's code, what an in-process scrape exports (the
    system collector builds its names), the recording rules' names, and `up`."""
    text = "".join(
        p.read_text()
        for d in ("monitoring", "shop", "maintenance")
        for p in (ROOT / d).rglob("*.py")
    )
    names = set(re.findall(r'"([a-z_][a-z0-9_]*)"', text))
    rules = (ROOT / "deploy/prometheus/recording_rules.yml").read_text()
    names |= set(re.findall(r"record: (\w+)", rules))
    scrape = Client().get("/api/monitoring/prometheus/", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    names |= set(re.findall(r"^# TYPE (\w+)", scrape.content.decode(), re.M))
    return names | {"up"}


def _all_panels():
    for c in panels.CATEGORIES:
        if c.slug != "alerts" and not c.pending:
            yield from panels.category(c.slug)
    yield from panels.overview()


@pytest.mark.parametrize("panel", list(_all_panels()), ids=lambda p: p.id)
def test_every_panel_expression_compiles_and_names_real_series(panel):
    known = _known_series()
    for query in panel.queries:
        node = compile_expr(query.expr)  # the monitor's engine can run it
        for name in _names(node):
            base = re.sub(r"_(bucket|count|sum)$", "", name)
            assert {name, base, base.removesuffix("_total")} & known, (panel.id, name)


def test_batch_answers_in_order_and_refuses_bad_items():
    client = Client()
    auth = {"HTTP_AUTHORIZATION": f"Bearer {TOKEN}"}
    requests = [
        {"path": "v1/admin/tsdb/delete_series", "params": {}},
        {"path": "v1/query", "params": {}},
        {"path": "v1/query", "params": {"query": "up"}},  # nothing listens: unavailable
    ]
    answer = client.post(
        "/dashboard/api/batch", {"requests": requests}, content_type="application/json", **auth
    )
    assert answer.status_code == 200
    results = answer.json()["results"]
    assert [r["status"] for r in results] == ["error"] * 3
    assert "path" in results[0]["error"] and results[1]["error"] == "query is required"
    assert results[2]["errorType"] == "unavailable"
    too_many = {"requests": [{"path": "v1/query", "params": {"query": "up"}}] * 201}
    refused = client.post("/dashboard/api/batch", too_many, content_type="application/json", **auth)
    assert refused.status_code == 400
    assert (
        Client().post("/dashboard/api/batch", {}, content_type="application/json").status_code
        == 401
    )
