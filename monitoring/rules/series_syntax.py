"""The syntax of a rule test's series values (``1+2x3 _x2 stale``) as promtool 2.42 checks it,
for its error messages: the first problem in ``values``, worded and placed as promtool prints it.

promtool reads ``series values`` with PromQL's lexer in its series mode and a yacc grammar;
this module is a small hand-written tokenizer and state machine with the same outcome, made
from its observed messages (tests/monitoring/rules/conformance/failing/series_syntax.test.yml):

- the lexer: ``x`` is always the repetition sign, ``_`` a blank, ``+``/``-`` signs, a number
  may not run into a letter, digit or ``_`` (``bad number syntax``), a word is an identifier
  (or a PromQL keyword, or ``Inf``/``NaN``, which are numbers), anything else an
  ``unexpected character in series sequence``;
- the grammar: an item is ``_``, ``_xN``, a value (a number, a signed number or ``stale``),
  ``VxN`` or ``V+SxN``; a token the grammar cannot take is ``unexpected …``, with ``in series
  values`` inside an item after a sign, an ``x`` or a blank's ``x``, without it where an item
  could have ended.

Public surface: ``series_syntax_error(values, col) -> str | None``.
"""

from __future__ import annotations

import re

_OPERATOR_WORDS = {"and", "or", "unless", "atan2"}
_AGGREGATOR_WORDS = {
    "sum", "avg", "count", "min", "max", "group", "stddev", "stdvar", "topk", "bottomk",
    "count_values", "quantile",
}  # fmt: skip
_KEYWORD_WORDS = {"offset", "by", "without", "on", "ignoring", "group_left", "group_right", "bool"}
_NUMBER_TAIL = re.compile(r"\d*(?:\.\d*)?(?:[eE][-+]?\d*)?")
_WORD = re.compile(r"[A-Za-z0-9_:]*")
_SPACE = " \t\r\n"

# Parser states: where in an item the next token arrives.
START, SIGN, BLANK, BLANK_TIMES, VALUE, STEP_SIGN, STEP, TIMES, DONE = range(9)


def _quote(text: str) -> str:
    """Go's %q for the short ASCII texts a series line holds."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _rune(char: str) -> str:
    """Go's %q of a rune."""
    return "'\\''" if char == "'" else "'\\\\'" if char == "\\" else f"'{char}'"


def _number_desc(text: str) -> str:
    # Go's item String(): a value longer than 10 is cut (%.10q...).
    return f"number {_quote(text[:10])}..." if len(text) > 10 else f"number {_quote(text)}"


def _word_desc(word: str) -> tuple[str, str]:
    """A word's token kind (NUMBER or WORD) and how an error names it."""
    low = word.lower()
    if low in ("inf", "nan"):
        return "NUMBER", _number_desc(word)
    if low in _OPERATOR_WORDS:
        return "WORD", f"<op:{word}>"
    if low in _AGGREGATOR_WORDS:
        return "WORD", f"<aggr:{word}>"
    if low in _KEYWORD_WORDS:
        return "WORD", f"<{word}>"
    if low in ("start", "end"):
        return "WORD", _quote(word)
    if ":" in word:
        return "WORD", f"metric identifier {_quote(word)}"
    return "IDENT", f"identifier {_quote(word)}"


def _tokens(values: str):
    """(kind, text, position, description) up to EOF or a lexer error (kind ERROR, the
    message as description)."""
    i, n = 0, len(values)
    while i < n:
        c = values[i]
        if c in _SPACE:
            yield "SPACE", c, i, _quote(c)
            while i < n and values[i] in _SPACE:
                i += 1
            continue
        if c in "+-":
            yield ("ADD" if c == "+" else "SUB"), c, i, f"<op:{c}>"
        elif c == "x":
            yield "TIMES", c, i, '"x"'
        elif c == "_":
            yield "BLANK", c, i, '"_"'
        elif c.isdigit() or (c == "." and values[i + 1 : i + 2].isdigit()):
            end = _NUMBER_TAIL.match(values, i).end()
            after = values[end : end + 1]
            if after and after != "x" and (after.isalnum() or after == "_"):
                yield "ERROR", "", i, f"bad number syntax: {_quote(values[i:end])}"
                return
            yield "NUMBER", values[i:end], i, _number_desc(values[i:end])
            i = end
            continue
        elif c.isascii() and c.isalpha():
            end = _WORD.match(values, i).end()
            kind, desc = _word_desc(values[i:end])
            yield kind, values[i:end], i, desc
            i = end
            continue
        else:
            yield "ERROR", "", i, f"unexpected character in series sequence: {_rune(c)}"
            return
        i += 1
    yield "EOF", "", len(values.rstrip(_SPACE)), "end of input"


def _float_error(text: str) -> str | None:
    """promtool's number(): Go's ParseInt (base 0), then ParseFloat; None when it parses."""
    if text.lower() in ("inf", "nan") or re.fullmatch(
        r"(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?", text
    ):
        return None
    return f"error parsing number: strconv.ParseFloat: parsing {_quote(text)}: invalid syntax"


def _uint_error(text: str) -> str | None:
    if text.isdigit():
        return (
            None
            if int(text) < 2**64
            else (
                f"invalid repetition in series values: strconv.ParseUint: parsing {_quote(text)}: "
                "value out of range"
            )
        )
    return (
        f"invalid repetition in series values: strconv.ParseUint: parsing {_quote(text)}: "
        "invalid syntax"
    )


# The next state for each token a state accepts.
_MOVES: dict[int, dict[str, int]] = {
    START: {"SPACE": START, "EOF": START, "NUMBER": VALUE, "IDENT": VALUE, "ADD": SIGN,
            "SUB": SIGN, "BLANK": BLANK},
    SIGN: {"NUMBER": VALUE},
    BLANK: {"SPACE": START, "EOF": START, "TIMES": BLANK_TIMES},
    BLANK_TIMES: {"NUMBER": DONE},
    VALUE: {"SPACE": START, "EOF": START, "TIMES": TIMES, "ADD": STEP_SIGN, "SUB": STEP_SIGN},
    STEP_SIGN: {"NUMBER": STEP},
    STEP: {"TIMES": TIMES},
    TIMES: {"NUMBER": DONE},
    DONE: {"SPACE": START, "EOF": START},
}  # fmt: skip
# States where promtool names the context of an unexpected token ("in series values").
_IN_ITEM = {SIGN, BLANK_TIMES, STEP_SIGN, STEP, TIMES}


def series_syntax_error(values: str, col: int = 1) -> str | None:
    """The first problem promtool reports in ``values`` (``col``: where ``values`` starts on
    promtool's ``series values`` line), as it prints it; None if it reads them."""

    def at(pos: int, message: str) -> str:
        return f"1:{col + pos}: parse error: {message}"

    state = START
    for kind, text, pos, desc in _tokens(values):
        if kind == "ERROR":
            return at(pos, desc)
        following = _MOVES[state].get(kind)
        if following is None:
            context = " in series values" if state in _IN_ITEM else ""
            return at(pos, f"unexpected {desc}{context}")
        if kind == "IDENT" and text != "stale":
            return at(pos, f'unexpected {desc} in series values, expected number or "stale"')
        if kind == "NUMBER":
            problem = _uint_error(text) if state in (TIMES, BLANK_TIMES) else _float_error(text)
            if problem:
                return at(pos, problem)
        state = following
    return None
