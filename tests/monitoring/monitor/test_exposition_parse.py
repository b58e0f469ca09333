"""The scraper's own text-format parser agrees with prometheus_client's, edge cases included."""

from __future__ import annotations

import math

import pytest
from prometheus_client import REGISTRY, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from monitoring.monitor.scrape import exposition_lines, exposition_parse

EDGE_CASES = [
    'a{x="1}2",y="q\\"z"} 3 1700000000000\n',  # '}' and an escaped quote in values, timestamp
    'b{x="a\\\\b\\nc",} 1\n',  # escaped backslash and newline, trailing comma
    "c 2\n",
    "c2\t5\n",
    "d{} 1\n",
    'e{ x = "1" , y="2" } 1.5e3\n',
    "f NaN\ng -Inf\nh +Inf\ni -0.0\n",
    'j{x=""} 1\n',
    "\n\n  k 7  \n# a comment\n",
    "# HELP l help \\\\ with \\n escapes\n# TYPE l counter\nl_total 1\nl_created 2\n",
    '# TYPE m histogram\nm_bucket{le="0.1"} 1\nm_bucket{le="+Inf"} 2\nm_sum 0.3\nm_count 2\n',
    '# TYPE n summary\nn{quantile="0.5"} 1\nn_sum 2\nn_count 3\n',
    "# TYPE o untyped\no 1\n",
]


def _reference(text: str) -> list[tuple[dict[str, str], str]]:
    return [
        ({"__name__": s.name, **s.labels}, repr(float(s.value)))
        for family in text_string_to_metric_families(text)
        for s in family.samples
    ]


def _ours(text: str) -> list[tuple[dict[str, str], str]]:
    return [(labels, repr(value)) for labels, value in exposition_parse(text)]


@pytest.mark.parametrize("text", EDGE_CASES)
def test_edge_cases_parse_as_prometheus_client_does(text):
    assert _ours(text) == _reference(text)


@pytest.mark.django_db
def test_the_apps_own_exposition_parses_as_prometheus_client_does(client, settings):
    settings.MONITORING_TOKEN = "t" * 32
    client.get("/api/health/")  # some requests, so the HTTP families have samples
    response = client.get("/api/monitoring/prometheus/", HTTP_AUTHORIZATION=f"Bearer {'t' * 32}")
    assert response.status_code == 200
    text = response.content.decode() + generate_latest(REGISTRY).decode()
    assert len(_reference(text)) > 100
    assert _ours(text) == _reference(text)


def test_metadata_is_keyed_by_the_type_lines_name():
    metadata: dict[str, dict] = {}
    exposition_lines(
        "# HELP r_total Requests.\n# TYPE r_total counter\nr_total 1\n"
        '# TYPE h histogram\nh_bucket{le="+Inf"} 1\nh_sum 1\nh_count 1\nloose 3\n',
        metadata,
    )
    assert metadata == {
        "r_total": {"type": "counter", "help": "Requests.", "unit": ""},
        "h": {"type": "histogram", "help": "", "unit": ""},
        "loose": {"type": "unknown", "help": "", "unit": ""},
    }


@pytest.mark.parametrize(
    "text",
    [
        "x{a=1} 2\n",
        'x{a="1" 2\n',
        "9x 1\n",
        "x 1 2 3\n",
        "x\n",
        'x{a="1",a="2"} 1\n',
        "x one\n",
        "# TYPE x bogus\nx 1\n",
    ],
)
def test_invalid_text_is_refused(text):
    with pytest.raises(ValueError):
        exposition_parse(text)


def test_special_values():
    (nan, inf) = exposition_parse("a NaN\nb +Inf\n")
    assert math.isnan(nan[1]) and inf[1] == math.inf
