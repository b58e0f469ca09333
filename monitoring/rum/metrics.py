"""RUM histograms, one series set per storefront page.

``page`` is one of PAGES (the storefront's own page names) or ``other``: what a browser sends
is never a label value as it is, so a client cannot grow the series count.
"""

from __future__ import annotations

from monitoring.metrics import Counter, Histogram
from monitoring.rum.beacon import Beacon

__all__ = ["PAGES", "beacon_record", "page_label"]

PAGES = frozenset({"home", "product", "login", "cart", "checkout", "other"})
_SECONDS = (0.1, 0.25, 0.5, 1, 1.5, 2, 2.5, 3, 4, 5, 7.5, 10, 20, 60, float("inf"))
# Google's thresholds fall on bucket bounds: LCP 2.5 s / 4 s, INP 200 ms / 500 ms, CLS 0.1 / 0.25.
_INP = (0.05, 0.1, 0.2, 0.3, 0.5, 1, 2, 5, float("inf"))
_CLS = (0.01, 0.05, 0.1, 0.15, 0.25, 0.5, 1, float("inf"))

_HISTOGRAMS = {
    "load": Histogram(
        "rum_page_load_seconds",
        "Browser page load (navigation start to load end).",
        ["page"],
        buckets=_SECONDS,
    ),
    "ttfb": Histogram(
        "rum_ttfb_seconds", "Browser time to first byte of the page.", ["page"], buckets=_SECONDS
    ),
    "dcl": Histogram(
        "rum_dom_content_loaded_seconds",
        "Browser time to DOMContentLoaded.",
        ["page"],
        buckets=_SECONDS,
    ),
    "lcp": Histogram(
        "rum_lcp_seconds",
        "Largest Contentful Paint, as the browser saw it.",
        ["page"],
        buckets=_SECONDS,
    ),
    "inp": Histogram(
        "rum_inp_seconds",
        "Interaction to Next Paint (slowest interaction).",
        ["page"],
        buckets=_INP,
    ),
}
CLS = Histogram("rum_cls", "Cumulative Layout Shift of a page view.", ["page"], buckets=_CLS)
JS_ERRORS = Counter("rum_js_errors_total", "JavaScript errors reported by browsers.", ["page"])
BEACONS = Counter("rum_beacons_total", "RUM beacons accepted.", ["page"])
REJECTED = Counter("rum_beacons_rejected_total", "RUM beacons refused.", ["reason"])
for _page in PAGES:  # every series exists from the start, so increase() sees the first event
    JS_ERRORS.labels(_page)
    BEACONS.labels(_page)
for _reason in ("invalid", "rate_limited", "too_large"):
    REJECTED.labels(_reason)


def page_label(page: str) -> str:
    return page if page in PAGES else "other"


def beacon_record(beacon: Beacon) -> None:
    page = page_label(beacon.page)
    for name, seconds in beacon.timings_s.items():
        _HISTOGRAMS[name].labels(page).observe(seconds)
    if beacon.cls is not None:
        CLS.labels(page).observe(beacon.cls)
    if beacon.errors:
        JS_ERRORS.labels(page).inc(beacon.errors)
    BEACONS.labels(page).inc()
