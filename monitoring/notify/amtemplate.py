"""Alertmanager 0.25's notification templates, on the rule engine's Go text/template engine.

- ``TemplateSet.load(paths)``: the `templates:` files (each file's `define`s, and the file
  itself under its base name, as Go's ``ParseGlob``); problems come back as ``file:line: …``.
- ``TemplateSet.check(text)``: why a receiver field cannot render (a syntax error, a template
  that is defined nowhere, one of Alertmanager's default templates we do not ship), or None.
- ``TemplateSet.render(text, data, html=False)``: ``ExecuteTextString``/``ExecuteHTMLString``;
  ``TemplateError`` when execution fails.
- ``template_data(notification)``: Alertmanager's ``template.Data`` (Receiver, Status, Alerts
  with ``.Firing``/``.Resolved``, GroupLabels, CommonLabels, CommonAnnotations as ``KV`` with
  ``SortedPairs``/``Names``/``Values``/``Remove``, ExternalURL).
- ``render_fields(templates, fields, notification)``: a channel's templated fields rendered,
  or None (logged) when one fails: the channel then sends its own message (docs/notify.md).

HTML rendering escapes each printed value for its place in the HTML as html/template does
(htmlescape.py: text, attributes, URLs; not script or style contents).
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

from monitoring.notify.gotime import GoTime
from monitoring.notify.htmlescape import HTMLEscaper
from monitoring.notify.notification import Notification, NotifiedAlert
from monitoring.rules.gofmt import go_print
from monitoring.rules.template import (
    FUNCS,
    Dialect,
    ExecError,
    GoValue,
    If,
    Range,
    SafeHTML,
    Template,
    TemplateCall,
    TemplateError,
)

__all__ = [
    "ALERTMANAGER",
    "DEFAULT_TEMPLATE_NAMES",
    "Data",
    "TemplateSet",
    "render_fields",
    "template_data",
]

log = logging.getLogger(__name__)

# What Alertmanager's built-in default.tmpl and email.tmpl define; we do not ship them.
DEFAULT_TEMPLATE_NAMES = frozenset(
    {
        "__alertmanager",
        "__alertmanagerURL",
        "__subject",
        "__description",
        "__text_alert_list",
        "email.default.subject",
        "email.default.html",
    }
    | {
        f"slack.default.{x}"
        for x in "title username fallback callbackid pretext titlelink iconemoji iconurl "
        "text footer".split()
    }
)


# --- functions --------------------------------------------------------------------------------


def _html_escape(text: str) -> str:
    """Go's ``html`` builtin (``template.HTMLEscapeString``)."""
    return (
        text.replace("&", "&amp;")
        .replace("'", "&#39;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace('"', "&#34;")
        .replace("\0", "\ufffd")
    )


def _js_escape(text: str) -> str:
    out = []
    for ch in text:
        if ch in "\\'\"":
            out.append("\\" + ch)
        elif ch in "<>&=" or ord(ch) < 0x20:
            out.append(f"\\u{ord(ch):04X}")
        else:
            out.append(ch)
    return "".join(out)


def _slice(item: Any, *indexes: int) -> Any:
    if not isinstance(item, str | list | tuple) or len(indexes) > 2:
        raise TemplateError("can't slice item")
    start = indexes[0] if indexes else 0
    end = indexes[1] if len(indexes) > 1 else len(item)
    if not 0 <= start <= end <= len(item):
        raise TemplateError(f"index out of range: {start}:{end}")
    return item[start:end]


def _upper(text: str) -> str:
    """Go's strings.ToUpper: one rune for one (``ß`` stays; Python's upper makes ``SS``)."""
    return "".join(u if len(u := c.upper()) == 1 else c for c in text)


def _lower(text: str) -> str:
    return "".join(u if len(u := c.lower()) == 1 else c for c in text)


def _title_word(word: re.Match) -> str:
    # The first letter of the word upper-cased (after digits: "1st" is "1St"), the rest lower.
    text = word[0]
    for i, c in enumerate(text):
        if c.isalpha():
            return text[:i] + _upper(c) + _lower(text[i + 1 :])
    return text


def _title(text: str) -> str:
    """golang.org/x/text's ``cases.Title``: words as Unicode splits them (``o'neil``,
    ``foo_bar`` are one word), each capitalised and the rest lower-cased."""
    return re.sub(r"\w+(?:['’.:·]\w+)*", _title_word, text)


def _sprint(*args: Any) -> str:
    """Go's fmt.Sprint: a space between two operands when neither is a string."""
    out = []
    for i, arg in enumerate(args):
        if i and not isinstance(arg, str) and not isinstance(args[i - 1], str):
            out.append(" ")
        out.append(go_print(arg))
    return "".join(out)


def _len(item: Any) -> int:
    if isinstance(item, str):
        return len(item.encode())  # Go's len of a string counts bytes
    if isinstance(item, list | tuple | dict):
        return len(item)
    raise TemplateError(f"len of type {getattr(item, 'go_type', type(item).__name__)}")


def _string(value: Any) -> str:
    """A Go string argument: not another type, not even `safeHtml`'s template.HTML."""
    if not isinstance(value, str) or isinstance(value, SafeHTML):
        kind = "template.HTML" if isinstance(value, SafeHTML) else type(value).__name__
        raise TemplateError(f"wrong type for value; expected string; got {kind}")
    return value


def _join(sep: str, items: Any) -> str:
    if not isinstance(items, list | tuple):
        raise TemplateError("wrong type for value; expected []string")
    return _string(sep).join(_string(item) for item in items)


_BUILTINS = ("printf", "println", "index", "eq", "ne", "lt", "le", "gt", "ge")
AM_FUNCS: dict[str, Any] = {
    **{name: FUNCS[name] for name in _BUILTINS},
    "print": _sprint,
    "len": _len,
    "not": FUNCS["not"],
    "html": lambda *a: _html_escape(_sprint(*a)),
    "js": lambda *a: _js_escape(_sprint(*a)),
    "urlquery": lambda *a: quote_plus(_sprint(*a), safe="-_.~"),
    "slice": _slice,
    # Alertmanager 0.25's own.
    "toUpper": lambda s: _upper(_string(s)),
    "toLower": lambda s: _lower(_string(s)),
    "title": lambda s: _title(_string(s)),
    "join": _join,
    "match": lambda pattern, text: FUNCS["match"](_string(pattern), _string(text)),
    "safeHtml": lambda s: SafeHTML(_string(s)),
    "reReplaceAll": lambda pattern, repl, text: FUNCS["reReplaceAll"](
        _string(pattern), _string(repl), _string(text)
    ),
    "stringSlice": lambda *s: [_string(x) for x in s],
    # Nothing of later Alertmanagers (trimSpace, date, tz, since, humanizeDuration, safeUrl,
    # urlUnescape): amtool 0.25 refuses them, so they are unknown functions here too.
}

ALERTMANAGER = Dialect(
    AM_FUNCS, frozenset({"call"}), frozenset({"$"}), named_templates=True, strict=True
)


# --- data -------------------------------------------------------------------------------------


class Pair(GoValue):
    go_type = "template.Pair"
    go_fields = frozenset({"Name", "Value"})
    go_field_order = ("Name", "Value")

    def __init__(self, name: str, value: str) -> None:
        self.Name, self.Value = name, value  # noqa: N815 (Go's field names)

    def __str__(self) -> str:
        return f"{{{self.Name} {self.Value}}}"


class Pairs(GoValue, list):
    go_type = "template.Pairs"
    go_methods = frozenset({"Names", "Values"})

    def Names(self) -> list[str]:  # noqa: N802 (Go's method names)
        return [p.Name for p in self]

    def Values(self) -> list[str]:  # noqa: N802
        return [p.Value for p in self]


class KV(GoValue, dict):
    """A label or annotation set; printed as Go prints a map."""

    go_type = "template.KV"
    go_methods = frozenset({"SortedPairs", "Remove", "Names", "Values"})

    def SortedPairs(self) -> Pairs:  # noqa: N802
        """Sorted by name, `alertname` first."""
        keys = sorted(self, key=lambda k: (k != "alertname", k))
        return Pairs(Pair(k, self[k]) for k in keys)

    def Remove(self, keys: Iterable[str]) -> KV:  # noqa: N802
        if not isinstance(keys, list | tuple):
            raise TemplateError("wrong type for value; expected []string")
        drop = set(keys)
        return KV({k: v for k, v in self.items() if k not in drop})

    def Names(self) -> list[str]:  # noqa: N802
        return self.SortedPairs().Names()

    def Values(self) -> list[str]:  # noqa: N802
        return self.SortedPairs().Values()


class Alert(GoValue):
    go_type = "template.Alert"
    go_fields = frozenset(
        {"Status", "Labels", "Annotations", "StartsAt", "EndsAt", "GeneratorURL", "Fingerprint"}
    )

    def __init__(self, alert: NotifiedAlert) -> None:
        self.Status = alert.status  # noqa: N815 (Go's field names)
        self.Labels = KV(alert.labels)  # noqa: N815
        self.Annotations = KV(alert.annotations)  # noqa: N815
        self.StartsAt = GoTime.from_ms(alert.starts_at_ms)  # noqa: N815
        self.EndsAt = GoTime.from_ms(alert.ends_at_ms)  # noqa: N815 (zero while firing)
        self.GeneratorURL = alert.generator_url  # noqa: N815
        self.Fingerprint = alert.fingerprint  # noqa: N815

    def __str__(self) -> str:
        parts = (self.Status, self.Labels, self.Annotations, self.StartsAt, self.EndsAt)
        rest = (self.GeneratorURL, self.Fingerprint)
        return "{" + " ".join(go_print(p) for p in (*parts, *rest)) + "}"


class Alerts(GoValue, list):
    go_type = "template.Alerts"
    go_methods = frozenset({"Firing", "Resolved"})

    def Firing(self) -> list[Alert]:  # noqa: N802
        return [a for a in self if a.Status == "firing"]

    def Resolved(self) -> list[Alert]:  # noqa: N802
        return [a for a in self if a.Status == "resolved"]


@dataclass
class Data(GoValue):
    """Alertmanager's ``template.Data``."""

    go_type = "*template.Data"
    go_fields = frozenset(
        {
            "Receiver",
            "Status",
            "Alerts",
            "GroupLabels",
            "CommonLabels",
            "CommonAnnotations",
            "ExternalURL",
        }
    )

    Receiver: str  # noqa: N815 (Go's field names)
    Status: str  # noqa: N815
    Alerts: Alerts  # noqa: N815
    GroupLabels: KV = field(default_factory=KV)  # noqa: N815
    CommonLabels: KV = field(default_factory=KV)  # noqa: N815
    CommonAnnotations: KV = field(default_factory=KV)  # noqa: N815
    ExternalURL: str = ""  # noqa: N815

    def __str__(self) -> str:
        parts = (self.Receiver, self.Status, self.Alerts, self.GroupLabels, self.CommonLabels)
        rest = (self.CommonAnnotations, self.ExternalURL)
        return "{" + " ".join(go_print(p) for p in (*parts, *rest)) + "}"


def _labels_before(a: Mapping[str, str], b: Mapping[str, str]) -> bool:
    """Prometheus' ``LabelSet.Before``."""
    if len(a) != len(b):
        return len(a) < len(b)
    for name in sorted({*a, *b}):
        if name not in a:
            return True
        if name not in b:
            return False
        if a[name] != b[name]:
            return a[name] < b[name]
    return False


def _alert_order(x: NotifiedAlert, y: NotifiedAlert) -> int:
    """Alertmanager's ``AlertSlice`` order: by job, then instance, then the label sets."""
    for key in ("job", "instance"):
        xv, yv = x.labels.get(key), y.labels.get(key)
        if xv is None and yv is None:
            continue
        if xv is None or yv is None:
            return 1 if xv is None else -1
        if xv != yv:
            return -1 if xv < yv else 1
    if _labels_before(x.labels, y.labels):
        return -1
    return 1 if _labels_before(y.labels, x.labels) else 0


def template_data(notification: Notification) -> Data:
    n = notification
    alerts = sorted(n.alerts, key=functools.cmp_to_key(_alert_order))
    return Data(
        Receiver=re.sub(r"([\\.+*?()|\[\]{}^$])", r"\\\1", n.receiver),  # regexp.QuoteMeta
        Status=n.status,
        Alerts=Alerts(Alert(a) for a in alerts),
        GroupLabels=KV(n.group_labels),
        CommonLabels=KV(n.common_labels),
        CommonAnnotations=KV(n.common_annotations),
        ExternalURL=n.external_url,
    )


# --- templates --------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1024)
def _parse(text: str) -> Template:
    return Template(text, "", ALERTMANAGER)


def _calls(nodes: list) -> Iterable[str]:
    """The names `{{ template }}` calls in `nodes`, at any depth."""
    for node in nodes:
        if isinstance(node, TemplateCall):
            yield node.name
        elif isinstance(node, If):
            for _, body in node.branches:
                yield from _calls(body)
            yield from _calls(node.orelse)
        elif isinstance(node, Range):
            yield from _calls(node.body)
            yield from _calls(node.orelse)


@dataclass(frozen=True)
class TemplateSet:
    defines: Mapping[str, list] = field(default_factory=dict)
    files: tuple[Path, ...] = ()

    @classmethod
    def load(cls, paths: Iterable[Path]) -> tuple[TemplateSet, list[str]]:
        """The files' templates, and one `file:line: problem` per file that does not parse."""
        defines: dict[str, list] = {}
        errors: list[str] = []
        files = tuple(paths)
        for path in files:
            try:
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                errors.append(f"{path}:0: cannot read template file: {exc}")
                continue
            try:
                parsed = Template(text, path.name, ALERTMANAGER)
            except (TemplateError, ValueError, SyntaxError) as exc:
                line = getattr(exc, "line", 1)
                errors.append(f"{path}:{line}: template: {exc}")
                continue
            # As Go's ParseGlob: the file's own text under its base name, then its defines;
            # an empty body never replaces a non-empty one.
            for name, body in ((path.name, parsed.nodes), *parsed.defines.items()):
                if body or not defines.get(name):
                    defines[name] = body
        return cls(defines, files), errors

    def check(self, text: str) -> str | None:
        """Why `text` (a receiver field) cannot render, or None."""
        try:
            parsed = _parse(text)
        except (TemplateError, ValueError, SyntaxError) as exc:
            return f"template does not parse: {exc}"
        known = {**self.defines, **parsed.defines}
        seen: set[str] = set()
        todo = list(_calls(parsed.nodes))
        while todo:
            name = todo.pop()
            if name in seen:
                continue
            seen.add(name)
            if name in known:
                todo.extend(_calls(known[name]))
            elif name in DEFAULT_TEMPLATE_NAMES:
                return (
                    f"Alertmanager's default template {name!r} is not shipped by the notifier; "
                    "leave the field out to get the notifier's own message"
                )
            else:
                return f"template {name!r} is not defined in the `templates:` files"
        return None

    def render(self, text: str, data: Data, *, html: bool = False) -> str:
        if not text:
            return ""
        parsed = _parse(text)
        escape = HTMLEscaper() if html else None
        return parsed.render({"$": data}, data, templates=dict(self.defines), escape=escape)


def is_default_reference(text: str | None) -> bool:
    """`{{ template "slack.default.title" . }}` alone: Alertmanager's default, i.e. unset."""
    if text is None:
        return False
    m = re.fullmatch(r'\s*\{\{-?\s*template\s+"([^"]+)"\s+\.\s*-?\}\}\s*', text)
    return bool(m and m.group(1) in DEFAULT_TEMPLATE_NAMES)


def render_fields(
    templates: TemplateSet,
    fields: Mapping[str, str],
    notification: Notification,
    *,
    html_fields: Iterable[str] = (),
    integration: str = "",
) -> dict[str, str] | None:
    """Each field rendered, or None when any fails (logged): Alertmanager would fail the
    notification; we send the channel's own message so no alert is lost for a typo."""
    if not fields:
        return {}
    data = template_data(notification)
    html = set(html_fields)
    out: dict[str, str] = {}
    for name, text in fields.items():
        try:
            out[name] = templates.render(text, data, html=name in html)
        except (TemplateError, RecursionError) as exc:
            if isinstance(exc, ExecError):
                exc = f"at <{exc.node}>: {exc.message}"
            log.error(
                "template of %s (%s) field %s failed, sending the channel's own message: %s",
                notification.receiver,
                integration,
                name,
                exc,
                extra={"template_error": str(exc)},
            )
            return None
    return out
