"""Keep secrets out of log records: passwords, tokens, card numbers, auth headers, cookies.

Two rules, applied wherever a record carries data (message, arguments, extra keys, nested
containers, exception text):
- a value stored under a sensitive key (``password``, ``Authorization``, ``card_number``...) is
  replaced whole;
- free text is scrubbed of ``Bearer``/``Basic`` credentials, ``key=value`` pairs with a sensitive
  key, and Luhn-valid 13-19 digit card numbers (spaces or dashes allowed between digits).
"""

import re
from collections.abc import Mapping

REDACTED = "[REDACTED]"

_SENSITIVE_WORDS = (
    r"pass(?:word|wd|phrase)?|pwd|secret|token|api[-_]?key|access[-_]?key|private[-_]?key"
    r"|authorization|auth[-_]?header|cookie|set[-_]cookie|session(?:[-_]?id)?|csrf(?:token)?"
    r"|card[-_]?(?:number|no)|credit[-_]?card|pan|cvc|cvv|cvv2|security[-_]?code|iban|otp"
    r"|signature|credentials?"
)
# A key is sensitive when one of its words (split on _ - . and case changes) is in the list.
_SENSITIVE_KEY = re.compile(rf"(?:^|[^a-z])(?:{_SENSITIVE_WORDS})(?:$|[^a-z])")

# `password=hunter2`, `"client_secret": "abc"`, `Cookie: a=b; c=d` inside free text: a key is
# an identifier with a sensitive word between its _ or - separated parts.
_KEY_VALUE = re.compile(
    rf"""(?ix)
    (?P<key>\b(?:[a-z0-9]+[_-])*(?:{_SENSITIVE_WORDS})(?:[_-][a-z0-9]+)*\d*\b["']?\s*[:=]\s*)
    (?P<value>"[^"]*"|'[^']*'|(?:(?:bearer|basic|digest|token)\s+)?[^\s,&}}]+(?:;\s*[^\s,&}}]+)*)
    """
)
# DRF's `Token <key>` only with a key-like value, so "Token authentication failed" stays.
_AUTH_SCHEME = re.compile(
    r"(?i)\b(bearer|basic|digest)\s+[A-Za-z0-9._~+/=-]{4,}|\b(token)\s+[A-Za-z0-9._~+/=-]{16,}"
)
# A run of digit groups joined by single spaces or dashes, not after a decimal point: a card
# number (13-19 digits) is the whole run or some of its groups (`_card_replacement`).
_CARD_CANDIDATE = re.compile(r"(?<![\d.])\d+(?:[ -]\d+)*")

# Cheap tests first (C-level substring checks), the patterns only when they could match.
_CARD_DIGITS = re.compile(r"\d[\d -]{11,}\d")


def _has_scheme(lowered: str) -> bool:
    return "bearer" in lowered or "basic" in lowered or "digest" in lowered or "token" in lowered


_key_cache: dict[str, bool] = {}


def is_sensitive_key(key: object) -> bool:
    if not isinstance(key, str):
        return False
    cached = _key_cache.get(key)
    if cached is None:
        # camelCase -> camel_case, so `apiKey` and `X-Auth-Token` are caught too.
        words = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", key).lower()
        cached = _SENSITIVE_KEY.search(words) is not None
        if len(_key_cache) < 10_000:  # keys come from code, but never grow without bound
            _key_cache[key] = cached
    return cached


def luhn_valid(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if index % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def _is_card(text: str) -> bool:
    digits = text.replace(" ", "").replace("-", "")
    return 13 <= len(digits) <= 19 and luhn_valid(digits)


_DIGIT_RUN = re.compile(r"\d+")


def _card_replacement(match: re.Match) -> str:
    text = match.group(0)
    if len(text) < 13:  # fewer than 13 digits: no card (the common case, kept cheap)
        return text
    if _is_card(text):
        return REDACTED
    # The run may hold a card beside other numbers ("qty 2 4111 1111 1111 1111", "4222222222222
    # 12"), or two cards: look for cards made of whole digit groups, grouped as cards are
    # printed (every group but the last of 4 digits or more), so that a list of small numbers
    # is not taken for one.
    runs = [(run.start(), run.end()) for run in _DIGIT_RUN.finditer(text)]
    out, done, i = [], 0, 0
    while i < len(runs):
        start, card_end, digits = runs[i][0], None, 0
        for j in range(i, len(runs)):
            digits += runs[j][1] - runs[j][0]
            if digits > 19:
                break
            if digits >= 13 and _is_card(text[start : runs[j][1]]):
                card_end, last = runs[j][1], j
            if runs[j][1] - runs[j][0] < 4:
                break  # only the last group of a card is shorter
        if card_end is None:
            i += 1
            continue
        out += [text[done:start], REDACTED]
        done, i = card_end, last + 1
    return "".join(out) + text[done:]


def redact_text(text: str) -> str:
    """Scrub credentials and card numbers from free text; cheap when there is nothing to do."""
    if ("=" in text or ":" in text) and _KEY_VALUE.search(text):
        text = _KEY_VALUE.sub(lambda m: m.group("key") + REDACTED, text)
    if _has_scheme(text.lower()) and _AUTH_SCHEME.search(text):
        text = _AUTH_SCHEME.sub(lambda m: f"{m.group(1) or m.group(2)} {REDACTED}", text)
    if _CARD_DIGITS.search(text):
        text = _CARD_CANDIDATE.sub(_card_replacement, text)
    return text


def redact_value(value: object, depth: int = 0) -> object:
    """A copy of `value` with sensitive keys and text scrubbed; other objects are left alone."""
    if isinstance(value, str):
        return redact_text(value)
    if depth > 8:
        return value
    if isinstance(value, Mapping):
        return {
            key: REDACTED if is_sensitive_key(key) else redact_value(item, depth + 1)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset):
        return [redact_value(item, depth + 1) for item in value]
    if isinstance(value, int | float | bool) or value is None:
        return value
    return redact_text(str(value))
