"""html/template's contextual escaping, the part an email's `html` field needs.

``HTMLEscaper`` follows the template's own text (never the values it prints, as Go's static
analysis) through HTML text, tags, and quoted or unquoted attribute values, and escapes each
printed value for where it lands, as Go's html/template does:

- HTML text: ``< > & ' " +`` and NUL escaped; a ``safeHtml`` value as it is;
- an attribute value: the same escapes (a ``safeHtml`` value loses its tags); unquoted, spaces,
  ``=`` and backquotes too;
- a URL attribute (``href``, ``src``, … or a name holding ``url``/``uri``/``src``): a value at
  the start of the URL must have an http(s)/mailto scheme or none (else ``#ZgotmplZ``) and is
  percent-normalised; after ``?`` or ``#`` it is percent-encoded as a query value;
- HTML comments in the template's text are dropped, with what is printed inside them; a ``<``
  in the text that starts no tag is written ``&lt;``.

Script and style contents (JavaScript and CSS contexts) are escaped as HTML text, where Go
escapes for JavaScript or CSS: a documented difference.
"""

from __future__ import annotations

import re
from typing import Any

from monitoring.rules.template import SafeHTML

__all__ = ["HTMLEscaper"]

_TEXT = {
    "\0": "\ufffd",
    '"': "&#34;",
    "&": "&amp;",
    "'": "&#39;",
    "+": "&#43;",
    "<": "&lt;",
    ">": "&gt;",
}
_NOSPACE = {
    **_TEXT,
    "\t": "&#9;",
    "\n": "&#10;",
    "\v": "&#11;",
    "\f": "&#12;",
    "\r": "&#13;",
    " ": "&#32;",
    "=": "&#61;",
    "`": "&#96;",
}
_URL_ATTRS = {
    "action",
    "archive",
    "background",
    "cite",
    "classid",
    "codebase",
    "data",
    "formaction",
    "href",
    "icon",
    "longdesc",
    "manifest",
    "poster",
    "profile",
    "src",
    "usemap",
    "xmlns",
}
_RAW_ELEMENTS = {"script", "style", "textarea", "title"}


def _replace(text: str, table: dict[str, str]) -> str:
    return "".join(table.get(c, c) for c in text)


def _strip_tags(text: str) -> str:
    return re.sub(r"<[^>]*>?", "", text)


def _url_process(text: str, normalize: bool) -> str:
    out = []
    data = text.encode()
    for i, byte in enumerate(data):
        c = chr(byte)
        if c.isascii() and (c.isalnum() or c in "-._~"):
            out.append(c)
        elif normalize and c in "!#$&*+,/:;=?@[]":
            out.append(c)
        elif normalize and c == "%" and re.fullmatch(rb"%[0-9a-fA-F]{2}", data[i : i + 3]):
            out.append(c)
        else:
            out.append(f"%{byte:02x}")
    return "".join(out)


def _url_filter(text: str) -> str:
    scheme, colon, _ = text.partition(":")
    if colon and "/" not in scheme and scheme.lower() not in ("http", "https", "mailto"):
        return "#ZgotmplZ"
    return text


def _url_attr(name: str) -> bool:
    name = name.lower().removeprefix("data-")
    if ":" in name:
        prefix, _, name = name.partition(":")
        if prefix == "xmlns":
            return True
    return name in _URL_ATTRS or any(part in name for part in ("src", "uri", "url"))


class HTMLEscaper:
    """One rendering's HTML context: `text(s)` for the template's own text (what it returns is
    written), `value(v, printed)` for a printed value."""

    def __init__(self) -> None:
        self.state = "text"  # text, tag, attr_name, after_name, before_value, value, raw
        self.element = ""
        self.attr = ""
        self.delim = ""  # '"', "'" or " " (unquoted)
        self.url_part = "none"  # none, pre_query, query
        self.comment = False

    def value(self, value: Any, printed: str) -> str:
        safe = isinstance(value, SafeHTML)
        if self.comment:
            return ""  # Go drops comments, and what is printed inside them
        if self.state in ("tag", "attr_name", "after_name"):
            return printed  # an attribute name from a value: rare; Go filters it
        if self.state in ("before_value", "value"):
            if self.state == "before_value":  # `attr={{ x }}`: an unquoted value
                self.state, self.delim, self.url_part = "value", " ", "none"
            text = _strip_tags(printed) if safe else printed
            if _url_attr(self.attr):
                if self.url_part == "query":
                    text = _url_process(text, normalize=False)
                else:
                    if self.url_part == "none":
                        text = _url_filter(text)
                    text = _url_process(text, normalize=True)
            return _replace(text, _NOSPACE if self.delim == " " else _TEXT)
        if safe:
            return printed
        return _replace(printed, _TEXT)

    def text(self, text: str) -> str:
        out = []
        i = 0
        while i < len(text):
            if self.comment:
                end = text.find("-->", i)
                if end == -1:
                    return "".join(out)
                self.comment = False
                i = end + 3
                continue
            if self.state == "text":
                start = text.find("<", i)
                if start == -1:
                    out.append(text[i:])
                    break
                out.append(text[i:start])
                if text.startswith("<!--", start):
                    self.comment = True
                    i = start + 4
                    continue
                m = re.match(r"</?([A-Za-z][A-Za-z0-9-]*)", text[start:])
                if m:
                    self.element = m.group(1).lower() if not m.group(0).startswith("</") else ""
                    self.state = "tag"
                    out.append(m.group(0))
                    i = start + len(m.group(0))
                else:
                    # As Go: a "<" that starts no tag is escaped (a doctype is kept).
                    doctype = text[start : start + 9].upper() == "<!DOCTYPE"
                    out.append("<" if doctype else "&lt;")
                    i = start + 1
                continue
            if self.state == "raw":
                end = text.lower().find(f"</{self.element}", i)
                if end == -1:
                    out.append(text[i:])
                    break
                out.append(text[i:end])
                self.state, i = "text", end
                continue
            c = text[i]
            out.append(c)
            i += 1
            if self.state in ("tag", "attr_name", "after_name"):
                if c == ">":
                    raw = self.element in _RAW_ELEMENTS
                    self.state = "raw" if raw else "text"
                elif c == "=" and self.state != "tag":
                    self.state = "before_value"
                elif c.isspace():
                    if self.state == "attr_name":
                        self.state = "after_name"
                elif c != "/":
                    if self.state != "attr_name":
                        self.attr = ""
                    self.attr += c
                    self.state = "attr_name"
            elif self.state == "before_value":
                if c in "\"'":
                    self.state, self.delim, self.url_part = "value", c, "none"
                elif not c.isspace():
                    self.state, self.delim, self.url_part = "value", " ", "none"
                    self._url_text(c)
            elif self.state == "value":
                if c == self.delim or (self.delim == " " and (c.isspace() or c == ">")):
                    self.state = "tag" if c != ">" else "text"
                else:
                    self._url_text(c)
        return "".join(out)

    def _url_text(self, c: str) -> None:
        if c in "?#":
            self.url_part = "query"
        elif not c.isspace() and self.url_part == "none":
            self.url_part = "pre_query"
