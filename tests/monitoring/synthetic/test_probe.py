"""One probe attempt against a real local HTTP(S) server, judged as blackbox_exporter would."""

import ssl
import time

import pytest

from monitoring.synthetic import CheckConfig, probe_once, state_next
from monitoring.synthetic.probe import der_not_after, tls_context
from tests.monitoring.synthetic.site import Site, self_signed


@pytest.fixture
def site():
    s = Site()
    yield s
    s.close()


def _check(url, **options) -> CheckConfig:
    return CheckConfig(
        name="c", url=url, expected_status=200, timeout_ms=2000, interval_s=1, **options
    )


def _probe(check):
    context = tls_context(insecure_skip_verify=check.insecure_skip_verify, ca_file=check.ca_file)
    return probe_once(check, context)


def test_status_text_and_json_path(site):
    assert _probe(_check(site.url + "/")).success
    assert _probe(_check(site.url + "/", expected_text="Pasargad")).success
    missing = _probe(_check(site.url + "/", expected_text="Closed"))
    assert not missing.success and "does not contain 'Closed'" in missing.error
    site.status = 503
    failed = _probe(_check(site.url + "/"))
    assert (failed.success, failed.status_code) == (False, 503)
    assert failed.error == "status 503, expected 200"
    site.status, site.body = 200, b'{"status": "healthy", "checks": [{"ok": true}]}'
    assert _probe(_check(site.url, json_path=("status",), json_value="healthy")).success
    assert _probe(_check(site.url, json_path=("checks", 0, "ok"), json_value="true")).success
    wrong = _probe(_check(site.url, json_path=("status",), json_value="ok"))
    assert "json_path value 'healthy', expected 'ok'" in wrong.error
    assert not _probe(_check(site.url, json_path=("nope",))).success


def test_method_body_and_headers_are_sent(site):
    check = _check(
        site.url + "/api/ping",
        method="POST",
        body='{"a": 1}',
        headers=(("X-Probe", "yes"),),
    )
    assert _probe(check).success
    method, path, headers, body = site.requests[-1]
    assert (method, path, body) == ("POST", "/api/ping", b'{"a": 1}')
    assert headers["X-Probe"] == "yes" and headers["User-Agent"].startswith("pasargad-synthetic")


def test_timeout_and_refused_connection(site):
    site.delay_s = 1.0
    slow = _probe(
        CheckConfig(name="c", url=site.url, expected_status=200, timeout_ms=200, interval_s=1)
    )
    assert not slow.success and slow.error == "timeout after 200 ms" and slow.status_code == 0
    assert slow.duration_s < 1.0
    site.close()
    refused = _probe(_check(site.url))
    assert not refused.success and refused.status_code == 0


def test_https_reports_the_certificate_expiry(tmp_path):
    cert, key = self_signed(tmp_path, days=10)
    site = Site(certfile=cert, keyfile=key)
    try:
        expected = ssl.cert_time_to_seconds(
            ssl._ssl._test_decode_cert(str(cert))["notAfter"]  # the reference parse
        )
        trusted = _probe(_check(site.url + "/", ca_file=str(cert)))
        assert trusted.success and trusted.cert_not_after == expected
        assert 9 * 86400 < trusted.cert_not_after - time.time() <= 10 * 86400
        unverified = _probe(_check(site.url + "/"))  # self-signed, not trusted: a failure
        assert not unverified.success and "CERTIFICATE_VERIFY_FAILED" in unverified.error
        skipped = _probe(_check(site.url + "/", insecure_skip_verify=True))
        assert skipped.success and skipped.cert_not_after == expected
    finally:
        site.close()


def test_redirects_are_followed_to_the_final_answer(site):
    target = Site()
    try:
        site.status, site.headers = 302, {"Location": target.url + "/landing"}
        result = _probe(_check(site.url + "/old", expected_text="Pasargad"))
        assert result.success and result.status_code == 200
        assert target.requests[-1][:2] == ("GET", "/landing")
        site.headers = {"Location": site.url + "/loop"}  # to itself, for ever
        looped = _probe(_check(site.url + "/loop"))
        assert not looped.success and "more than 10 redirects" in looped.error
    finally:
        target.close()


def test_the_prober_exports_the_certificate_expiry_of_https_checks(tmp_path):
    from monitoring.synthetic import Prober
    from monitoring.tsdb.store import SampleStore

    cert, key = self_signed(tmp_path, days=20)
    site = Site(certfile=cert, keyfile=key)
    store = SampleStore(retention_seconds=3600)
    prober = Prober(store, [_check(site.url + "/", ca_file=str(cert))])
    try:
        (state,) = prober.states()
        prober.attempt(state)
        t = prober.clock()
        from monitoring.rules.engine import Engine

        (expiry,) = Engine(store).instant("probe_ssl_earliest_cert_expiry", t).samples
        assert 19 * 86400 < expiry.value - time.time() <= 20 * 86400
        assert dict(expiry.labels) == {
            "__name__": "probe_ssl_earliest_cert_expiry",
            "job": "synthetic",
            "instance": site.url + "/",
            "check": "c",
        }
    finally:
        prober.close()
        site.close()


def test_der_not_after_refuses_garbage():
    assert der_not_after(b"\x30\x03\x02\x01\x01") is None


def test_retries_before_down_and_before_up():
    check = _check("http://x/", failures_before_down=3, successes_before_up=2)
    up, streak = True, 0
    results = []
    for success in [False, False, True, False, False, False, True, False, True, True]:
        up, streak, retry = state_next(up, streak, success, check)
        results.append((up, retry))
    assert results == [
        (True, True),  # 1st failure: retry soon
        (True, True),  # 2nd
        (True, False),  # a success resets the count
        (True, True),
        (True, True),
        (False, False),  # 3rd failure in a row: down
        (False, True),  # 1st success: retry soon
        (False, False),  # a failure resets it
        (False, True),
        (True, False),  # 2nd success in a row: up
    ]
