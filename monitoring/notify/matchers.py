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


def compile_anchored(pattern: str) -> re.Pattern[str]:
    """Alertmanager anchors every regex (`^(?:…)$`); callers use `fullmatch`."""
    try:
        return re.compile(f"(?:{go_regex(pattern)})")
    except re.error as exc:
        raise MatcherError(f"error parsing regexp {pattern!r}: {exc}") from None


_POSIX_CLASSES = {
    "alnum": "0-9A-Za-z",
    "alpha": "A-Za-z",
    "ascii": "\\x00-\\x7f",
    "blank": "\\t ",
    "cntrl": "\\x00-\\x1f\\x7f",
    "digit": "0-9",
    "graph": "!-~",
    "lower": "a-z",
    "print": " -~",
    "punct": "!-/:-@\\[-`{-~",
    "space": "\\t\\n\\v\\f\\r ",
    "upper": "A-Z",
    "word": "0-9A-Za-z_",
    "xdigit": "0-9A-Fa-f",
}
# RE2's Perl classes are ASCII-only (Python's are Unicode): their members as class ranges.
_PERL_CLASSES = {
    "d": "0-9",
    "D": "\\x00-/:-\\U0010ffff",
    "w": "0-9A-Za-z_",
    "W": "\\x00-/:-@\\[-^`{-\\U0010ffff",
    "s": "\\t\\n\\f\\r ",
    "S": "\\x00-\\x08\\x0b\\x0e-\\x1f!-\\U0010ffff",
}
_WORD = "[0-9A-Za-z_]"
_BOUNDARIES = {
    "b": f"(?:(?<!{_WORD})(?={_WORD})|(?<={_WORD})(?!{_WORD}))",
    "B": f"(?:(?<!{_WORD})(?!{_WORD})|(?<={_WORD})(?={_WORD}))",
}
_GO_FLAGS = re.compile(r"\(\?(-?[ims]+|[ims]+-[ims]*)\)")
_NOT_RE2 = re.compile(r"\(\?(=|!|<=|<!|>)|[*+?}]\+")


def go_regex(pattern: str) -> str:
    """A Go (RE2) regex in Python's syntax, or MatcherError for what RE2 refuses.

    Python reads most RE2 alike; the differences handled are flag groups (`(?i)` scopes to
    the end of its group in Go, Python wants `(?i:…)`), ASCII-only `\\d \\w \\s \\b`, POSIX
    classes (`[[:alpha:]]`), `\\z`, `\\Q…\\E`, and constructs RE2 refuses but Python accepts
    (lookaround, backreferences, atomic groups, possessive repeats).
    """
    bare = pattern.replace("\\\\", "")
    if _NOT_RE2.search(bare):
        raise MatcherError(f"error parsing regexp {pattern!r}: a construct RE2 does not have")
    if re.search(r"\(\?[a-zA-Z-]*U|\\[pP]", bare):
        raise MatcherError(
            f"regexp {pattern!r}: ungreedy mode and Unicode classes are not supported by the notifier"
        )
    out: list[str] = []
    scopes: list[list[str]] = [[]]  # per open group: the flag groups opened inside it
    i, in_class = 0, False
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            nxt = pattern[i + 1]
            if nxt == "Q":
                stop = pattern.find("\\E", i + 2)
                literal = pattern[i + 2 : stop if stop != -1 else len(pattern)]
                out.append(re.escape(literal))
                i = stop + 2 if stop != -1 else len(pattern)
                continue
            if nxt.isdigit() and nxt != "0" and not in_class:
                raise MatcherError(f"error parsing regexp {pattern!r}: invalid escape \\{nxt}")
            if nxt in _PERL_CLASSES:
                ranges = _PERL_CLASSES[nxt]
                out.append(ranges if in_class else f"[{ranges}]")
            elif nxt in _BOUNDARIES and not in_class:
                out.append(_BOUNDARIES[nxt])
            else:
                out.append("\\Z" if nxt == "z" and not in_class else ch + nxt)
            i += 2
            continue
        if in_class:
            posix = re.match(r"\[:(\^?)([a-z]+):\]", pattern[i:])
            if posix and posix.group(2) in _POSIX_CLASSES:
                if posix.group(1):
                    raise MatcherError(f"error parsing regexp {pattern!r}: negated POSIX class")
                out.append(_POSIX_CLASSES[posix.group(2)])
                i += posix.end()
                continue
            in_class = ch != "]"
            # Literal in RE2's classes; Python reads `[[`, `&&`, `~~`, `||` as future set syntax.
            out.append("\\" + ch if ch in "[&~|" else ch)
        elif ch == "[":
            in_class = True
            caret = pattern.startswith("[^", i)
            out.append("[^" if caret else "[")
            i += 2 if caret else 1
            if i < len(pattern) and pattern[i] == "]":  # a leading ] is literal
                out.append("\\]")
                i += 1
            continue
        elif (flags := _GO_FLAGS.match(pattern, i)) is not None:
            out.append(f"(?{flags.group(1)}:")
            scopes[-1].append(flags.group(1))
            i = flags.end()
            continue
        elif ch == "(":
            scopes.append([])
            out.append(ch)
        elif ch == ")" and len(scopes) > 1:
            out.append(")" * len(scopes.pop()) + ch)
        elif ch == "|":
            # Flags hold to the end of the group, across its alternatives: close, reopen.
            opened = scopes[-1]
            out.append(")" * len(opened) + "|" + "".join(f"(?{f}:" for f in opened))
        else:
            out.append(ch)
        i += 1
    out.append(")" * len(scopes[0]))
    return "".join(out)


@dataclass(frozen=True)
class Matchers:
    """An AND of matchers, sorted as Alertmanager sorts them."""

    items: tuple[Matcher, ...] = ()

    @classmethod
    def of(cls, matchers: Iterable[Matcher]) -> Matchers:
        return cls(tuple(sorted(matchers, key=Matcher.sort_key)))

    def matches(self, labels: Mapping[str, str]) -> bool:
        for m in self.items:  # a loop, not all(…): this runs for every route of every alert
            if not m.matches(labels.get(m.name, "")):
                return False
        return True

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
