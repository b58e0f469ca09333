"""Alertmanager's label matchers: `name="value"`, `!=`, `=~`, `!~`, as amtool and the
configuration's `matchers:` lists parse them (pkg/labels/parse.go, matcher.go of 0.25).

A missing label matches as the empty string; regexes are anchored at both ends; a matcher
list is sorted by name, value, then operator, as Alertmanager sorts it (a route's key and
its printed form depend on that order).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

EQUAL, NOT_EQUAL, REGEX, NOT_REGEX = "=", "!=", "=~", "!~"
_TYPE_ORDER = {EQUAL: 0, NOT_EQUAL: 1, REGEX: 2, NOT_REGEX: 3}

# Go's \s is ASCII whitespace only; the value is taken lazily so trailing blanks are dropped.
_BLANK = r"[\t\n\f\r ]*"
_MATCHER_RE = re.compile(
    rf"{_BLANK}([a-zA-Z_:][a-zA-Z0-9_:]*){_BLANK}(=~|=|!=|!~){_BLANK}(.*?){_BLANK}", re.DOTALL
)


class MatcherError(ValueError):
    """A matcher that Alertmanager would refuse; the message is the problem, not the place."""


@dataclass(frozen=True)
class Matcher:
    name: str
    op: str
    value: str
    _regex: re.Pattern[str] | None = field(default=None, compare=False, repr=False)

    @classmethod
    def new(cls, name: str, op: str, value: str) -> Matcher:
        regex = None
        if op in (REGEX, NOT_REGEX):
            regex = compile_anchored(value)
        return cls(name, op, value, regex)

    def matches(self, value: str) -> bool:
        if self.op == EQUAL:
            return value == self.value
        if self.op == NOT_EQUAL:
            return value != self.value
        hit = self._regex.fullmatch(value) is not None  # type: ignore[union-attr]
        return hit if self.op == REGEX else not hit

    def __str__(self) -> str:
        escaped = self.value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')
        return f'{self.name}{self.op}"{escaped}"'

    def sort_key(self) -> tuple[str, str, int]:
        return (self.name, self.value, _TYPE_ORDER[self.op])


_LEADING_FLAGS = re.compile(r"\(\?([ims]+)\)")


def compile_anchored(pattern: str) -> re.Pattern[str]:
    """Alertmanager anchors every regex (`^(?:…)$`); callers use `fullmatch`. Go scopes a
    leading `(?i)` to the group it opens; Python wants it scoped, so `(?i)x` is `(?i:x)`."""
    flags = _LEADING_FLAGS.match(pattern)
    if flags:
        pattern = f"(?{flags.group(1)}:{pattern[flags.end() :]})"
    try:
        return re.compile(f"(?:{pattern})")
    except re.error as exc:
        raise MatcherError(f"error parsing regexp {pattern!r}: {exc}") from None


@dataclass(frozen=True)
class Matchers:
    """An AND of matchers, sorted as Alertmanager sorts them."""

    items: tuple[Matcher, ...] = ()

    @classmethod
    def of(cls, matchers: Iterable[Matcher]) -> Matchers:
        return cls(tuple(sorted(matchers, key=Matcher.sort_key)))

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(m.matches(labels.get(m.name, "")) for m in self.items)

    def __str__(self) -> str:
        return "{" + ",".join(str(m) for m in self.items) + "}"

    def __bool__(self) -> bool:
        return bool(self.items)


def parse_matcher(text: str) -> Matcher:
    """One matcher: `a=b`, `a = "b"`, `a=~"x.*"`; OpenMetrics escapes inside quotes."""
    m = _MATCHER_RE.fullmatch(text)
    if m is None:
        raise MatcherError(f"bad matcher format: {text}")
    name, op, raw = m.groups()
    quoted = raw.startswith('"')
    if quoted:
        raw = raw[1:]
    out: list[str] = []
    escaped = False
    last = len(raw) - 1
    for i, ch in enumerate(raw):
        if escaped:
            escaped = False
            out.append({"n": "\n", '"': '"', "\\": "\\"}.get(ch, "\\" + ch))
        elif ch == "\\":
            if i < last:
                escaped = True
            else:
                out.append("\\")
        elif ch == '"':
            if not quoted or i < last:
                raise MatcherError(f"matcher value contains unescaped double quote: {m.group(3)}")
            quoted = False
        else:
            out.append(ch)
    if quoted:
        raise MatcherError(f"matcher value contains unescaped double quote: {m.group(3)}")
    return Matcher.new(name, op, "".join(out))


def parse_matchers(text: str) -> list[Matcher]:
    """A comma-separated list, braces optional: `{a="b", c=~"d.*"}` or `a=b,c!=d`."""
    text = text.removeprefix("{").removesuffix("}")
    tokens: list[str] = []
    token: list[str] = []
    inside_quotes = escaped = False
    for ch in text:
        if ch == "," and not inside_quotes:
            tokens.append("".join(token))
            token = []
            continue
        if ch == '"':
            if escaped:
                escaped = False
            else:
                inside_quotes = not inside_quotes
        elif ch == "\\":
            escaped = not escaped
        else:
            escaped = False
        token.append(ch)
    if "".join(token).strip():
        tokens.append("".join(token).strip())
    return [parse_matcher(t) for t in tokens]


def parse_labels(args: Iterable[str]) -> dict[str, str]:
    """`LABEL=VALUE` arguments as amtool reads them: matcher syntax, only `=` allowed."""
    labels: dict[str, str] = {}
    for arg in args:
        matcher = parse_matcher(arg)
        if matcher.op != EQUAL:
            raise MatcherError("labels must be specified as key=value pairs")
        labels[matcher.name] = matcher.value
    return labels
