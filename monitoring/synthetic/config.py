"""The synthetic checks file (deploy/synthetic/checks.yml), in the specification's shape.

    health_checks:
      - name: homepage_load          # required: [a-zA-Z_][a-zA-Z0-9_]*, unique
        url: /                       # required: http(s)://… or a path on the local shop
        expected_status: 200         # required
        timeout: 5000                # required, milliseconds
        interval: 60                 # required, seconds
        method: GET                  # optional (GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS)
        body: '{"a": 1}'             # optional request body (text)
        headers: {Accept: text/html} # optional
        expected_text: Catalog       # optional: the body must contain it
        json_path: $.status          # optional: the body is JSON and has this path …
        json_value: ok               # … optionally with this value (compared as text)
        failures_before_down: 3      # attempts that fail in a row before the check is down
        successes_before_up: 2       # attempts that succeed in a row before it is up again
        retry_interval: 1000         # ms between those attempts (the interval otherwise)
        insecure_skip_verify: false  # https: do not verify the certificate (expiry still read)
        ca_file: ca.pem              # https: trust this CA (relative to this file)

``checks_load(path, base_url=...)`` returns the checks or raises ConfigError with one
``file:line: problem`` per problem. A relative ``url`` is resolved against ``base_url`` (the
shop the monitor scrapes), or the file's top-level ``base_url`` when it sets one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urljoin, urlsplit

from yaml.nodes import Node, ScalarNode

from monitoring.configfile import Reader

__all__ = ["CheckConfig", "checks_load", "json_path_parse"]

_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_JSON_PATH = re.compile(r"\$?((?:\.[A-Za-z_][A-Za-z0-9_-]*|\[\d+\])*)\Z")
_JSON_STEP = re.compile(r"\.([A-Za-z_][A-Za-z0-9_-]*)|\[(\d+)\]")
_REQUIRED = frozenset({"name", "url", "expected_status", "timeout", "interval"})
_OPTIONAL = frozenset(
    {
        "method",
        "body",
        "headers",
        "expected_text",
        "json_path",
        "json_value",
        "failures_before_down",
        "successes_before_up",
        "retry_interval",
        "insecure_skip_verify",
        "ca_file",
    }
)
MAX_TIMEOUT_MS = 120_000


@dataclass(frozen=True)
class CheckConfig:
    name: str
    url: str
    expected_status: int
    timeout_ms: int
    interval_s: float
    method: str = "GET"
    body: str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    expected_text: str | None = None
    json_path: tuple[str | int, ...] | None = None
    json_value: str | None = None
    failures_before_down: int = 3
    successes_before_up: int = 2
    retry_interval_ms: int = 1000
    insecure_skip_verify: bool = False
    ca_file: str | None = None
    line: int = field(default=0, compare=False)

    @property
    def tls_key(self) -> tuple[bool, str | None]:
        """Checks with the same TLS options share one HTTP client."""
        return (self.insecure_skip_verify, self.ca_file)


def json_path_parse(text: str) -> tuple[str | int, ...] | None:
    """``$.a.b[0]`` as ("a", "b", 0); None when it is not that simple shape."""
    match = _JSON_PATH.match(text.strip())
    if match is None:
        return None
    return tuple(int(index) if index else key for key, index in _JSON_STEP.findall(match.group(1)))


class _ChecksReader(Reader):
    def integer(self, node: Node, where: str, low: int, high: int) -> int | None:
        value = self.number(node, where)
        if value is None:
            return None
        if value != int(value) or not low <= value <= high:
            self.error(node, f"{where}: expected a whole number from {low} to {high}")
            return None
        return int(value)

    def positive(self, node: Node, where: str, high: float) -> float | None:
        value = self.number(node, where)
        if value is not None and not 0 < value <= high:
            self.error(node, f"{where}: expected a number above 0 and at most {high:g}")
            return None
        return value

    def boolean(self, node: Node, where: str) -> bool:
        if isinstance(node, ScalarNode) and node.tag.endswith(":bool"):
            return node.value.lower() in ("true", "yes", "on")
        self.error(node, f"{where}: expected true or false")
        return False


def checks_load(
    path: Path | str, *, base_url: str = "", text: str | None = None
) -> list[CheckConfig]:
    """Every check in the file, all valid, or ConfigError naming each problem's line."""
    reader = _ChecksReader(path, text)
    checks: list[CheckConfig] = []
    if reader.root is not None:
        top = reader.mapping(
            reader.root,
            "checks file",
            allowed={"health_checks", "base_url"},
            required={"health_checks"},
        )
        file_base = reader.string(top.get("base_url"), "base_url", "") or ""
        if file_base and urlsplit(file_base).scheme not in ("http", "https"):
            reader.error(top["base_url"], "base_url: expected an http:// or https:// URL")
        seen: set[str] = set()
        for index, node in enumerate(reader.sequence(top.get("health_checks"), "health_checks")):
            check = _check(
                reader, node, f"health_checks[{index}]", file_base or base_url, Path(path)
            )
            if check is None:
                continue
            if check.name in seen:
                reader.error(node, f"health_checks[{index}]: duplicate check name {check.name!r}")
                continue
            seen.add(check.name)
            checks.append(check)
    reader.raise_if_errors()
    return checks


def _check(
    reader: _ChecksReader, node: Node, where: str, base_url: str, path: Path
) -> CheckConfig | None:
    errors_before = len(reader.errors)
    keys = reader.mapping(node, where, allowed=_REQUIRED | _OPTIONAL, required=_REQUIRED)
    if not _REQUIRED <= set(keys):
        return None
    name = reader.string(keys["name"], f"{where}.name") or ""
    if name and not _NAME.match(name):
        reader.error(
            keys["name"], f"{where}.name: {name!r} is not a valid name ([a-zA-Z_][a-zA-Z0-9_]*)"
        )
    where = f"check {name!r}" if name else where
    url = reader.string(keys["url"], f"{where}.url") or ""
    if url.startswith("/"):
        if not base_url:
            reader.error(keys["url"], f"{where}.url: a path needs a base_url (the shop's address)")
        url = urljoin(base_url, url)
    elif urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).netloc:
        reader.error(keys["url"], f"{where}.url: expected an http(s):// URL or a path, got {url!r}")
    status = reader.integer(keys["expected_status"], f"{where}.expected_status", 100, 599)
    timeout = reader.positive(keys["timeout"], f"{where}.timeout (ms)", MAX_TIMEOUT_MS)
    interval = reader.positive(keys["interval"], f"{where}.interval (s)", 86400)
    options: dict = {}
    if "method" in keys:
        method = (reader.string(keys["method"], f"{where}.method") or "").upper()
        if method not in _METHODS:
            reader.error(
                keys["method"], f"{where}.method: expected one of {', '.join(sorted(_METHODS))}"
            )
        options["method"] = method
    for key in ("body", "expected_text", "json_value"):
        if key in keys:
            options[key] = reader.string(keys[key], f"{where}.{key}")
    if "headers" in keys:
        headers = reader.mapping(keys["headers"], f"{where}.headers", allowed=_AnyKey())
        options["headers"] = tuple(
            (k, reader.string(v, f"{where}.headers.{k}") or "") for k, v in headers.items()
        )
    if "json_path" in keys:
        text = reader.string(keys["json_path"], f"{where}.json_path") or ""
        options["json_path"] = json_path_parse(text)
        if options["json_path"] is None:
            reader.error(
                keys["json_path"],
                f"{where}.json_path: {text!r} is not like $.status or $.items[0].name",
            )
    if "json_value" in options and "json_path" not in keys:
        reader.error(keys["json_value"], f"{where}.json_value: needs a json_path")
    for key in ("failures_before_down", "successes_before_up"):
        if key in keys:
            options[key] = reader.integer(keys[key], f"{where}.{key}", 1, 100)
    if "retry_interval" in keys:
        retry = reader.positive(keys["retry_interval"], f"{where}.retry_interval (ms)", 3600_000)
        options["retry_interval_ms"] = int(retry or 1000)
    if "insecure_skip_verify" in keys:
        options["insecure_skip_verify"] = reader.boolean(keys["insecure_skip_verify"], where)
    if "ca_file" in keys:
        ca = reader.string(keys["ca_file"], f"{where}.ca_file") or ""
        ca_path = path.parent / ca
        if not ca_path.is_file():
            reader.error(
                keys["ca_file"], f"{where}.ca_file: {str(ca_path)!r} is not a readable file"
            )
        options["ca_file"] = str(ca_path)
    if len(reader.errors) > errors_before:
        return None
    return CheckConfig(
        name=name,
        url=url,
        expected_status=status,
        timeout_ms=int(timeout),
        interval_s=float(interval),
        line=node.start_mark.line + 1,
        **options,
    )


class _AnyKey(frozenset):
    """Header names are the user's: any string key is allowed."""

    def __contains__(self, item: object) -> bool:
        return isinstance(item, str)
