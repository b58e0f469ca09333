"""Our template engine against `amtool template render` (Debian's Alertmanager 0.25): the same
template files, data and text render to the same output, or fail in both.

The data is our `template_data` written as Alertmanager's JSON (amtool reads it as is), so this
checks the engine, the functions and the methods; test_amtemplate_alertmanager.py checks the
data a real Alertmanager builds.
"""

from __future__ import annotations

import json
import random
import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import pytest

from monitoring.configfile import ConfigError
from monitoring.notify.amtemplate import Data, TemplateSet, template_data
from monitoring.notify.config import config_load
from monitoring.rules.gofmt import rfc3339
from monitoring.rules.template import TemplateError
from tests.monitoring.notify.channels.sample import notification, payment_alert, resolved
from tests.services import require_alertmanager

pytestmark = pytest.mark.slow

FILES = {
    "a.tmpl": r"""
{{ define "list" }}{{ range . }}{{ .Labels.instance }};{{ end }}{{ end }}
{{ define "pairs" -}}
{{ range $i, $p := . }}{{ if $i }}, {{ end }}{{ $p.Name }}={{ $p.Value | printf "%q" }}{{ end }}
{{- end }}
{{ define "vars" }}{{ $x := .Status }}{{ with .CommonLabels.team }}{{ $x }}/{{ . }}{{ end }}{{ end }}
{{ define "lt" }}<{{ . }}>{{ end }}
top of a
""",
    "b.tmpl": r"""{{ define "b.title" }}[{{ .Status | toUpper }}] {{ template "list" .Alerts }}{{ end }}
{{ define "recurse" }}{{ if . }}{{ index . 0 }}{{ template "recurse" (slice . 1) }}{{ end }}{{ end }}""",
}

CASES = [
    # fields, data and printing
    "{{ .Receiver }} {{ .Status }} {{ .ExternalURL }}",
    "{{ . }}",
    "{{ .Alerts }}",
    "{{ index .Alerts 0 }}",
    "{{ .CommonLabels }} {{ .GroupLabels }} {{ .CommonAnnotations }}",
    "{{ .CommonLabels.SortedPairs }}",
    "{{ .CommonLabels.Names }} {{ .CommonLabels.Values }} {{ .GroupLabels.SortedPairs.Names }}",
    '{{ .CommonLabels.Remove (stringSlice "job" "nope") }}',
    "{{ (.CommonLabels.Remove .GroupLabels.Names).SortedPairs.Values }}",
    '{{ .CommonLabels.missing }}|{{ index .CommonLabels "missing" }}|',
    "{{ len .Alerts.Firing }} {{ len .Alerts.Resolved }} {{ .Alerts.Resolved }}",
    "{{ range .Alerts }}{{ .Status }} {{ .Fingerprint }} {{ .GeneratorURL }}\n{{ end }}",
    "{{ range .Alerts }}{{ .StartsAt }} | {{ .EndsAt }} | {{ .EndsAt.IsZero }}\n{{ end }}",
    '{{ range .Alerts }}{{ .StartsAt.Format "2006-01-02T15:04:05.000Z07:00 Mon Jan _2 3PM" }}{{ end }}',
    '{{ range .Alerts }}{{ .StartsAt.UTC.Format "Monday, 02-Jan-06 15:04:05.99 MST -0700" }}{{ end }}',
    "{{ range .Alerts }}{{ .StartsAt.Unix }} {{ .StartsAt.Year }}{{ end }}",
    # control flow, variables, whitespace
    "{{ range $k, $v := .CommonLabels }}{{ $k }}:{{ $v }},{{ end }}",
    "{{ range .Alerts.Resolved }}x{{ else }}none{{ end }}",
    '{{ if eq .Status "resolved" }}r{{ else if eq .Status "firing" }}f{{ else }}?{{ end }}',
    "{{ with .CommonLabels.nope }}yes{{ else }}no{{ end }} {{ with .CommonLabels.job }}{{ . }}{{ end }}",
    "a  {{- .Status -}}  b {{/* a comment */}} c",
    "{{ $n := len .Alerts }}{{ $n = 7 }}{{ $n }} {{ $.Status }}",
    '{{ range .Alerts }}{{ if eq .Status "resolved" }}{{ continue }}{{ end }}{{ .Status }}{{ end }}',
    '{{ range $i, $s := stringSlice "a" "b" "c" }}{{ if eq $i 2 }}{{ break }}{{ end }}{{ $s }}{{ end }}',
    # named templates
    '{{ template "b.title" . }}',
    '{{ template "pairs" .CommonLabels.SortedPairs }}',
    '{{ template "vars" . }}',
    '{{ template "a.tmpl" . }}',
    '{{ template "recurse" (stringSlice "x" "y" "z") }}',
    '{{ define "local" }}L{{ . }}{{ end }}{{ template "local" 42 }}{{ block "blk" .Status }}<{{ . }}>{{ end }}',
    # functions
    '{{ title "hello-world foo_bar o\'neil 1st ünïcode ÉCOLE mIxEd" }}',
    '{{ toUpper "straße" }} {{ toLower "ÀB" }}',
    '{{ join ", " (stringSlice "a" "b" "c") }} {{ .CommonLabels.Names | join "+" }}',
    '{{ match "^web-[0-9]+$" "web-12" }} {{ match "b" "abc" }} {{ match "^b" "abc" }}',
    r'{{ reReplaceAll "(\\w+)-(\\d)" "$2:${1}x" "web-1 db-2" }} {{ reReplaceAll "a" "$$" "banana" }}',
    r'{{ reReplaceAll `(\w+)` "<$1>" "a b" }} {{ "\x41\u00e9\101\n" }}',
    '{{ safeHtml "<b>" }} {{ html "<a href=\'x\'>&\\"" }} {{ js "it\'s <b> \\"q\\" = &" }}',
    '{{ urlquery "a b&c=d/é" }} {{ print "a" 1 2 "b" "c" 3.5 true }}',
    '{{ println "x" 1 }}{{ printf "%s|%q|%v|%d|%5.2f|%x|%t|%-4s|%03d" "s" "q" 1.5 42 3.14159 255 true "ab" 7 }}',
    '{{ len "héllo" }} {{ index (stringSlice "a" "b") 1 }} {{ slice "abcdef" 2 }} {{ slice "abcdef" 1 3 }}',
    '{{ eq .Status "firing" "resolved" }} {{ ne 1 2 }} {{ lt "a" "b" }} {{ ge 2.5 2.5 }} {{ gt 3 2 }}',
    '{{ and 1 0 "x" }} {{ or 0 "" "y" }} {{ not "" }} {{ and .Status .ExternalURL }}',
    "{{ 1 }} {{ 1.5 }} {{ 1e21 }} {{ 0x1F }} {{ 'a' }} {{ \"a\\tb\" }} {{ `raw\\n` }}",
    "{{ .CommonLabels.SortedPairs | len }} {{ range $i, $a := .Alerts }}{{ $i }}{{ end }}",
    '{{ printf "%v|%s|%d alerts" .CommonLabels (index .Alerts 0).StartsAt (len .Alerts) }}',
    "{{ (index .Alerts 0).Labels.SortedPairs }} {{ index .CommonLabels.SortedPairs 0 }}",
    '{{ with $x := .Status }}{{ $x }}{{ end }} {{ .Alerts.Firing | len | printf "%03d" }}',
    '{{ if and (eq .Status "firing") (gt (len .Alerts.Firing) 0) }}yes{{ end }}',
    '{{ range .Alerts }}{{ .EndsAt.Format "Jan 2, 2006 at 3:04pm (MST)" }};{{ end }}',
    '{{ html true }} {{ urlquery 1 "a" 2 3 }} {{ or "x" (toUpper .GroupLabels.SortedPairs) }}',
    '{{ and "" (index .Alerts 9) }} {{ or .Status (index .Alerts 9) }}',  # and/or stop early
    # errors: both must refuse
    "{{ .Nope }}",
    "{{ .CommonLabels.SortedPairs.Nope }}",
    '{{ template "missing" . }}',
    "{{ index .Alerts 5 }}",
    '{{ reReplaceAll "(" "x" "y" }}',
    "{{ humanize 1 }}",
    "{{ nosuch }}",
    "{{ if }}",
    r'{{ "\w" }}',
    "{{ nil }}",
    '{{ "a" | safeHtml | toUpper }}',
    "{{ break }}",
    '{{ range .Alerts }}{{ define "in" }}{{ end }}{{ end }}',
    "{{ range .Status }}{{ end }}",
    "{{ toUpper 1 }}",
]

HTML_CASES = [
    '<p>{{ "a<b & \'c\' + \\"d\\"" }} {{ "<i>x</i>" | safeHtml }} {{ .CommonAnnotations.summary }}</p>',
    "<ul>{{ range .Alerts }}<li>{{ .Labels.instance }} {{ .Annotations.description }}</li>{{ end }}</ul>",
    '{{ template "b.title" . }} <b>{{ "<" }}</b>',
    '<!DOCTYPE html><p>a < b {{ template "lt" .Status }} c > d</p>',
    '<a href="{{ (index .Alerts 0).GeneratorURL }}&x=(1)">q</a> <img src={{ "a b(c)" }} alt=x>',
    '<a href="{{ .ExternalURL }}/#/alerts?receiver={{ .Receiver }}&x={{ "a b&c/d" }}">am</a>',
    "<a href='{{ \"javascript:alert(1)\" }}' title=\"{{ .CommonAnnotations.summary }} 'q' + &\">x</a>",
    '<a data-url="{{ "HTTPS://x.example/a%20b%zz" }}" class="{{ "a<b>" | safeHtml }}">{{ "<b>" | safeHtml }}</a>',
    '<!-- a comment {{ .Status }} --><p>kept</p><!-- another -->{{ "<" }}',
    '<input value={{ "a b=c`d" }}><p title="{{ "x" }}" >{{ .Status }}</p>',
    '<input disabled value="{{ .Status }}"><a href="/rel/{{ "a b?c" }}">x</a><br/>{{ "&" }}',
    '<a href="{{ "mailto:a@b" }}{{ "x y" }}">m</a> <a href="{{ "http://x/?q=1 2" }}?{{ "?" }}">n</a>',
    '<table>{{ range .Alerts }}<tr><td><a href="{{ .GeneratorURL }}">{{ .Labels.alertname }}</a></td></tr>{{ end }}</table>',
]


def _data_json(data: Data) -> dict:
    """Alertmanager's JSON for `template.Data`, as amtool's --template.data reads it."""

    def alert(a) -> dict:
        return {
            "status": a.Status,
            "labels": dict(a.Labels),
            "annotations": dict(a.Annotations),
            "startsAt": rfc3339(a.StartsAt.ms),
            "endsAt": "0001-01-01T00:00:00Z" if a.EndsAt.IsZero() else rfc3339(a.EndsAt.ms),
            "generatorURL": a.GeneratorURL,
            "fingerprint": a.Fingerprint,
        }

    return {
        "receiver": data.Receiver,
        "status": data.Status,
        "alerts": [alert(a) for a in data.Alerts],
        "groupLabels": dict(data.GroupLabels),
        "commonLabels": dict(data.CommonLabels),
        "commonAnnotations": dict(data.CommonAnnotations),
        "externalURL": data.ExternalURL,
    }


def _amtool(glob: str, data: Path, text: str, kind: str) -> tuple[bool, str]:
    result = subprocess.run(
        [
            shutil.which("amtool") or "amtool",
            "template",
            "render",
            f"--template.glob={glob}",
            f"--template.data={data}",
            f"--template.type={kind}",
            f"--template.text={text}",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return result.returncode == 0, result.stdout if result.returncode == 0 else result.stderr


def _ours(templates: TemplateSet, data: Data, text: str, html: bool) -> tuple[bool, str]:
    try:
        return True, templates.render(text, data, html=html)
    except (TemplateError, ValueError, SyntaxError) as exc:
        return False, str(exc)


def test_templates_render_as_amtool_renders_them(tmp_path):
    require_alertmanager()
    for name, body in FILES.items():
        (tmp_path / name).write_text(body)
    templates, errors = TemplateSet.load(sorted(tmp_path.glob("*.tmpl")))
    assert errors == []
    web2 = payment_alert("web-2", starts_at_ms=1_796_421_600_123)
    web1 = resolved(payment_alert("web-1"))
    web1 = replace(web1, annotations={**web1.annotations, "description": "<b>1 & 2</b>"})
    data = template_data(notification(web2, web1, receiver="team.payments"))
    data_file = tmp_path / "data.json"
    data_file.write_text(json.dumps(_data_json(data)))
    glob = str(tmp_path / "*.tmpl")
    jobs = [(text, False) for text in CASES] + [(text, True) for text in HTML_CASES]
    with ThreadPoolExecutor(4) as pool:
        theirs = list(
            pool.map(
                lambda job: _amtool(glob, data_file, job[0], "html" if job[1] else "text"), jobs
            )
        )
    differ = []
    for (text, html), (their_ok, their_out) in zip(jobs, theirs, strict=True):
        our_ok, our_out = _ours(templates, data, text, html)
        if our_ok != their_ok or (our_ok and our_out != their_out):
            differ.append(
                f"{text!r}\n  amtool: {their_ok} {their_out!r}\n  ours:   {our_ok} {our_out!r}"
            )
    assert not differ, "\n".join(differ)
    assert sum(ok for ok, _ in theirs) >= len(jobs) - 16  # the error cases fail, the rest render


TEMPLATE_FILES = [
    '{{ define "ok" }}{{ .Status }}{{ end }}',
    '{{ define "a" }}{{ end }}{{ define "a" }}filled{{ end }}',
    '{{/* a comment */}}{{ define "b" -}}\n{{ range .Alerts }}{{ break }}{{ end }}\n{{- end }}',
    '{{ define "x" }}\nfine\n{{ .Status | nosuch }}\n{{ end }}',
    '{{ define "x" }}\n{{ if .Status }}\n',
    "line one\n{{ end }}",
    '{{ define "x" }}{{ "\\w" }}{{ end }}',
    "\n\n{{ break }}",
    '{{ define "a" }}x{{ end }}\n{{ define "a" }}y{{ end }}',
    "{{ .Status | }}",
    '{{ define "x" }}{{ humanize 1 }}{{ end }}',
    # Functions of later Alertmanagers, unknown to 0.25.
    '{{ define "x" }}\n{{ trimSpace " x " }}{{ end }}',
    '{{ define "x" }}\n\n{{ date "15:04" .StartsAt }}{{ end }}',
    '{{ define "x" }}{{ tz "UTC" .StartsAt }}{{ end }}',
    '{{ define "x" }}{{ since .StartsAt | humanizeDuration }}{{ end }}',
    '{{ define "x" }}{{ humanizeDuration 1 }}{{ end }}',
    '{{ define "x" }}{{ safeUrl "http://x" }}{{ urlUnescape "a" }}{{ end }}',
    "{{ $undefined }}",
    "{{ template }}",
    "{{ .Status | }}",  # Go as Alertmanager 0.25 is built accepts a trailing pipe
    "\n\n{{ .Status",
    "ok\n{{/* open",
    "{{ else }}",
    "{{ range }}{{ end }}",
    '{{ define "x" }}{{ end }}\n{{ end }}',
    '{{ define "x" }}\n{{ with $x := .Status }}{{ $x }}{{ end }}{{ $x }}{{ end }}',
]


def test_template_files_are_refused_as_amtool_check_config_refuses_them(tmp_path):
    """The same verdict for each file, and for a refused one the same line."""
    require_alertmanager()
    (tmp_path / "templates").mkdir()
    path = tmp_path / "alertmanager.yml"
    path.write_text(
        "route:\n  receiver: r\nreceivers:\n  - name: r\ntemplates:\n  - templates/*.tmpl\n"
    )
    differ = []
    for body in TEMPLATE_FILES:
        (tmp_path / "templates" / "a.tmpl").write_text(body)
        amtool = subprocess.run(
            [shutil.which("amtool") or "amtool", "check-config", str(path)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        their_line = re.search(r"a\.tmpl:(\d+)", amtool.stdout + amtool.stderr)
        try:
            config_load(path, env={})
            ours = None
        except ConfigError as exc:
            ours = re.search(r"a\.tmpl:(\d+)", str(exc))
        if (amtool.returncode == 0) != (ours is None) or (
            ours and their_line and ours.group(1) != their_line.group(1)
        ):
            differ.append(f"{body!r}\n  amtool: {amtool.stdout[-200:]!r}\n  ours: {ours}")
    assert not differ, "\n".join(differ)


# Random templates: values, functions and actions nested at random, in text and in HTML.
_STRINGS = ['"a b"', '"ÄbC"', "\"x<y>&'z'\"", '""', '"web-1"', "`r\\w`", '"http://x/a?b=c d"']
_VALUES = [
    ".Status",
    ".Receiver",
    ".CommonLabels.alertname",
    ".CommonAnnotations.summary",
    "(index .Alerts 0).Labels.instance",
    "(index .Alerts 1).Annotations.description",
    "(index .Alerts 0).GeneratorURL",
    "(index .Alerts 0).StartsAt",
    "(index .Alerts 1).EndsAt",
    ".CommonLabels",
    ".GroupLabels.SortedPairs",
    ".CommonLabels.Names",
    "(len .Alerts.Firing)",
    "1",
    "2.5",
    "-3",
    "true",
    "0",
    *_STRINGS,
]
_FUNCS = ["toUpper", "toLower", "title", "html", "js", "urlquery", "safeHtml", "len", "print"]
# Verbs whose misuse Go prints as we do (a mistyped %f, %x or %q prints Go's quirks).
_VERBS = ["%s", "%v", "%d", "%-6v|", "%t"]
_HTML = ["<p>{}</p>", '<a href="{}">x</a>', "<a title='{}'>", '<a href="/x?q={}">', "{}"]
# What html/template refuses and we render (docs/notify.md).
_AMBIGUOUS = ("ambiguous context", "different contexts", "in unquoted attr")


def _random_value(rnd: random.Random, depth: int = 0) -> str:
    r = rnd.random() if depth < 2 else 1.0
    if r < 0.3:
        return f"({rnd.choice(_FUNCS)} {_random_value(rnd, depth + 1)})"
    if r < 0.4:
        # Not a time: Go prints a time.Time's insides for a verb other than %s and %v.
        printable = [v for v in _VALUES if not v.endswith("At")]
        return f"(printf {json.dumps(rnd.choice(_VERBS))} {rnd.choice(printable)})"
    if r < 0.45:
        return f'(reReplaceAll "[aeiou]" "_" {_random_value(rnd, depth + 1)})'
    if r < 0.5:
        return f'(join "," (stringSlice {rnd.choice(_STRINGS)} {rnd.choice(_STRINGS)}))'
    if r < 0.58:
        op = rnd.choice(["eq", "ne", "lt", "gt", "le", "ge", "and", "or"])
        return f"({op} {_random_value(rnd, depth + 1)} {_random_value(rnd, depth + 1)})"
    if r < 0.62:
        return f'(match "^[a-z]" {_random_value(rnd, depth + 1)})'
    return rnd.choice(_VALUES)


def _random_action(rnd: random.Random) -> str:
    value, r = _random_value(rnd), rnd.random()
    if r < 0.6:
        return f"{{{{ {value} }}}}"
    if r < 0.7:
        return f"{{{{ if {value} }}}}Y{{{{ else }}}}N{{{{ end }}}}"
    if r < 0.8:
        over = rnd.choice(
            [".Alerts", ".CommonLabels", ".GroupLabels.SortedPairs", ".Alerts.Firing"]
        )
        return f"{{{{ range {over} }}}}[{{{{ . }}}}]{{{{ end }}}}"
    if r < 0.9:
        return f'{{{{ template "lt" {value} }}}}'
    return f"{{{{ with {value} }}}}w{{{{ . }}}}{{{{ end }}}}"


def test_random_templates_render_as_amtool_renders_them(tmp_path):
    require_alertmanager()
    for name, body in FILES.items():
        (tmp_path / name).write_text(body)
    templates, _ = TemplateSet.load(sorted(tmp_path.glob("*.tmpl")))
    web1 = resolved(payment_alert("web-1"))
    web1 = replace(web1, annotations={**web1.annotations, "description": "<b>1 & 2</b> +x 'q'"})
    data = template_data(notification(payment_alert("web-2"), web1))
    data_file = tmp_path / "data.json"
    data_file.write_text(json.dumps(_data_json(data)))
    rnd = random.Random(20261205)
    jobs = []
    for _ in range(300):
        text = "".join(_random_action(rnd) for _ in range(rnd.randint(1, 3)))
        html = rnd.random() < 0.3
        jobs.append((rnd.choice(_HTML).format(text) if html else text, html))
    glob = str(tmp_path / "*.tmpl")
    with ThreadPoolExecutor(4) as pool:
        theirs = list(
            pool.map(lambda j: _amtool(glob, data_file, j[0], "html" if j[1] else "text"), jobs)
        )
    differ = []
    for (text, html), (their_ok, their_out) in zip(jobs, theirs, strict=True):
        if not their_ok and any(reason in their_out for reason in _AMBIGUOUS):
            continue
        our_ok, our_out = _ours(templates, data, text, html)
        if our_ok != their_ok or (our_ok and our_out != their_out):
            differ.append(f"{text!r}\n  amtool: {their_ok} {their_out!r}\n  ours: {our_out!r}")
    assert not differ, "\n".join(differ)
    assert sum(ok for ok, _ in theirs) > 100  # most render; the rest fail in both
