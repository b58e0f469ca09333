"""Alertmanager's matcher syntax and semantics (pkg/labels of 0.25)."""

import pytest

from monitoring.notify.matchers import (
    Matcher,
    MatcherError,
    Matchers,
    parse_labels,
    parse_matcher,
    parse_matchers,
)


@pytest.mark.parametrize(
    "text, name, op, value",
    [
        ("a=b", "a", "=", "b"),
        ('a="b"', "a", "=", "b"),
        ("  a  !=  b  ", "a", "!=", "b"),
        ('a=~"d.*"', "a", "=~", "d.*"),
        ("a!~x|y", "a", "!~", "x|y"),
        ("a=", "a", "=", ""),
        ('a=""', "a", "=", ""),
        ('a="x\\"y"', "a", "=", 'x"y'),
        ('a="x\\ny"', "a", "=", "x\ny"),
        ('a="x\\\\y"', "a", "=", "x\\y"),
        ('a="x\\qy"', "a", "=", "x\\qy"),  # a spurious escape keeps its backslash
        ("a=x\\", "a", "=", "x\\"),  # a trailing backslash is literal
        ("a:b_c=1", "a:b_c", "=", "1"),
        ("a==b", "a", "=", "=b"),
    ],
)
def test_parse_matcher(text: str, name: str, op: str, value: str) -> None:
    m = parse_matcher(text)
    assert (m.name, m.op, m.value) == (name, op, value)


@pytest.mark.parametrize(
    "text, problem",
    [
        ("1a=b", "bad matcher format"),
        ("a", "bad matcher format"),
        ('a="b', "unescaped double quote"),
        ('a=b"c', "unescaped double quote"),
        ('a="b"c"', "unescaped double quote"),
        ('a=~"("', "error parsing regexp"),
    ],
)
def test_parse_matcher_refuses(text: str, problem: str) -> None:
    with pytest.raises(MatcherError, match=problem):
        parse_matcher(text)


def test_parse_matchers_splits_outside_quotes() -> None:
    ms = parse_matchers('{foo = "bar", dings != "bums", }')
    assert [(m.name, m.op, m.value) for m in ms] == [("foo", "=", "bar"), ("dings", "!=", "bums")]
    ms = parse_matchers('quote="She said: \\"Hi, ladies!\\"",b=~"5.."')
    assert [m.value for m in ms] == ['She said: "Hi, ladies!"', "5.."]
    assert [m.value for m in parse_matchers('a="x,y",b=z')] == ["x,y", "z"]
    with pytest.raises(MatcherError):
        parse_matchers("a=b,,c=d")


def test_semantics_missing_label_is_empty_and_regex_is_anchored() -> None:
    labels = {"severity": "critical", "service": "db-main"}
    assert Matcher.new("team", "=", "").matches(labels.get("team", ""))
    assert Matcher.new("team", "!=", "devops").matches("")
    assert not Matcher.new("service", "=~", "db").matches(labels["service"])
    assert Matcher.new("service", "=~", "db.*").matches(labels["service"])
    assert Matcher.new("service", "!~", "db").matches(labels["service"])
    assert Matcher.new("service", "=~", "a|db-main").matches(labels["service"])
    # Go's `$` is the end of the text: a trailing newline does not match.
    assert not Matcher.new("a", "=~", "x").matches("x\n")
    assert not Matcher.new("a", "=~", "x.y").matches("x\ny")
    assert Matcher.new("a", "=~", "(?i)brute.*").matches("BruteForce")


def test_matchers_sorted_and_printed_as_alertmanager() -> None:
    ms = Matchers.of(parse_matchers('z="1",a=~"x",a="x",a!="y"'))
    assert str(ms) == '{a="x",a=~"x",a!="y",z="1"}'
    assert str(Matchers.of([Matcher.new("a", "=", 'q"\n\\')])) == '{a="q\\"\\n\\\\"}'
    assert ms.matches({"a": "x", "z": "1"})
    assert not ms.matches({"a": "x"})
    assert Matchers().matches({}) and not Matchers()


def test_parse_labels_as_amtool() -> None:
    assert parse_labels(["a=b", 'c="d e"']) == {"a": "b", "c": "d e"}
    with pytest.raises(MatcherError, match="key=value"):
        parse_labels(["a!=b"])
