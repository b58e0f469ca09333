"""/api/rum/: validation (4xx with a reason), rate limit, and the per-page histograms."""

import json

import pytest
from django.test import Client

from security import config as security_config
from security import middleware as security_middleware
from tests.monitoring.metric_values import sample_value
from tests.wait import window_left

# Every request passes the security middleware, whose block list lives in the database.
pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_limiter(settings, tmp_path):
    """Counts of this test's own (the rate limit's file is the security middleware's)."""
    settings.SECURITY_COUNTER_FILE = str(tmp_path / "counters.bin")
    security_config.reset()
    yield
    security_config.reset()


def _post(body, client=None, content_type="application/json", addr="10.0.0.1"):
    data = body if isinstance(body, str | bytes) else json.dumps(body)
    return (client or Client()).post("/api/rum/", data, content_type=content_type, REMOTE_ADDR=addr)


def test_a_beacon_lands_in_the_page_histograms():
    before = sample_value("rum_lcp_seconds_count", page="product")
    load_before = sample_value("rum_page_load_seconds_bucket", page="product", le="1.0")
    errors_before = sample_value("rum_js_errors_total", page="product")
    answer = _post(
        {
            "page": "product",
            "load_ms": 800,
            "lcp_ms": 1200,
            "cls": 0.02,
            "inp_ms": 80,
            "ttfb_ms": 40,
            "dcl_ms": 300,
            "errors": 2,
            "error_messages": ["x is undefined"],
        }
    )
    assert answer.status_code == 204
    assert sample_value("rum_lcp_seconds_count", page="product") == before + 1
    assert sample_value("rum_page_load_seconds_bucket", page="product", le="1.0") == load_before + 1
    assert sample_value("rum_js_errors_total", page="product") == errors_before + 2


def test_an_unknown_page_is_counted_as_other_never_as_a_new_series():
    before = sample_value("rum_beacons_total", page="other")
    assert _post({"page": "/some/random/path?x=1", "load_ms": 100}).status_code == 204
    assert sample_value("rum_beacons_total", page="other") == before + 1
    assert sample_value("rum_beacons_total", page="/some/random/path?x=1") == 0


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ([1, 2], "expected a JSON object"),
        ({"load_ms": 1}, "page: expected a string"),
        ({"page": "home", "load_ms": -5}, "load_ms: -5 is outside"),
        ({"page": "home", "lcp_ms": "fast"}, "lcp_ms: expected a number"),
        ({"page": "home", "lcp_ms": 10**9}, "lcp_ms: 1000000000 is outside"),
        ({"page": "home", "errors": 1.5}, "errors: expected a whole number"),
        ({"page": "home", "user_email": "a@b"}, "unknown field 'user_email'"),
        ("{not json", "body is not valid JSON"),
    ],
)
def test_bad_input_is_refused_with_the_reason(body, reason):
    answer = _post(body)
    assert answer.status_code == 400
    assert reason in answer.json()["detail"]


def test_oversized_and_wrong_type_and_wrong_method():
    assert _post({"page": "home", "error_messages": ["x" * 5000]}).status_code == 413
    assert _post("page=home", content_type="application/x-www-form-urlencoded").status_code == 415
    assert Client().get("/api/rum/").status_code == 405


def test_rate_limited_per_client_with_retry_after(settings):
    window_left(10)  # the exact counts below hold within one window
    settings.RUM_RATE_PER_MINUTE = 6
    assert [_post({"page": "home"}).status_code for _ in range(6)] == [204] * 6
    limited = _post({"page": "home"})
    assert limited.status_code == 429 and 1 <= int(limited["Retry-After"]) <= 60
    assert limited.json()["code"] == "rate_limited"
    assert _post({"page": "home"}, addr="10.0.0.2").status_code == 204  # another client


def test_the_limit_is_counted_in_the_file_every_worker_maps(settings):
    """A client spread over four gunicorn workers gets the rate once, not four times: the
    counts live in the file each worker maps. A fresh mapping of it (what another worker holds)
    sees the beacons counted before."""
    window_left(10)  # the exact counts below hold within one window
    settings.RUM_RATE_PER_MINUTE = 4
    assert [_post({"page": "home"}).status_code for _ in range(2)] == [204] * 2
    security_middleware.reset()  # this process forgets its mapping: as another worker
    assert [_post({"page": "home"}).status_code for _ in range(2)] == [204] * 2
    assert _post({"page": "home"}).status_code == 429


def test_rum_off_answers_404(settings):
    settings.RUM_ENABLED = False
    assert _post({"page": "home"}).status_code == 404
