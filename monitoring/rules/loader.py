"""Load and validate Prometheus rule files, the way ``promtool check rules`` does.

Public surface (stable):

- ``load_rule_files(paths, *, default_interval_s=60, external_labels=None, external_url="")
  -> list[RuleGroup]``: every group of every file, in order.  Raises ``RuleFileError`` whose
  ``errors`` lists every problem found in all files (nothing is half-loaded).
- ``check_rule_files(paths) -> list[RuleError]``: the same validation, returning the problems.
- ``RuleError(file, line, message)``; ``str()`` is ``file:line: message``.
- ``parse_duration(text) -> float`` seconds, Prometheus' duration syntax (``1h30m``, ``90s``).

Checked: YAML syntax, unknown keys at every level, missing group name, duplicate group names
in a file, bad durations/limit, ``record`` vs ``alert`` (exactly one), missing ``expr``,
``for``/``keep_firing_for``/``annotations`` on a recording rule, invalid metric, label and
annotation names, PromQL parse errors, PromQL constructs the engine does not support, and
label/annotation templates (syntax and functions).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import yaml

from monitoring.rules.alerting import AlertingRule, RecordingRule, Rule
from monitoring.rules.errors import QueryError, UnsupportedError
from monitoring.rules.expr import LABEL_NAME_RE, compile_expr
from monitoring.rules.gofmt import parse_duration
from monitoring.rules.group import RuleGroup
from monitoring.rules.template import TemplateError, parse_template

METRIC_NAME_RE = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")

GROUP_KEYS = {"name", "interval", "limit", "rules"}
RULE_KEYS = {"record", "alert", "expr", "for", "keep_firing_for", "labels", "annotations"}


@dataclass(frozen=True)
class RuleError:
    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


class RuleFileError(Exception):
    def __init__(self, errors: list[RuleError]) -> None:
        self.errors = errors
        super().__init__("\n".join(str(e) for e in errors))


class _File:
    def __init__(self, path: str) -> None:
        self.path = path
        self.errors: list[RuleError] = []

    def error(self, node: yaml.Node | None, message: str) -> None:
        line = node.start_mark.line + 1 if node is not None else 0
        self.errors.append(RuleError(self.path, line, message))


def _mapping(f: _File, node: yaml.Node, what: str, allowed: set[str]) -> dict[str, tuple]:
    """Key -> (key node, value node) for a mapping node, reporting unknown/duplicate keys."""
    if not isinstance(node, yaml.MappingNode):
        f.error(node, f"{what} must be a mapping")
        return {}
    out: dict[str, tuple] = {}
    for key_node, value_node in node.value:
        key = key_node.value
        if key not in allowed:
            f.error(key_node, f"field {key} not found in {what}")
            continue
        if key in out:
            f.error(key_node, f"mapping key {key!r} already defined in {what}")
            continue
        out[key] = (key_node, value_node)
    return out


def _scalar(f: _File, node: yaml.Node, what: str) -> str | None:
    if not isinstance(node, yaml.ScalarNode):
        f.error(node, f"{what} must be a string")
        return None
    return node.value


def _string_map(f: _File, node: yaml.Node, what: str) -> dict[str, tuple[str, yaml.Node]]:
    if isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:null":
        return {}
    if not isinstance(node, yaml.MappingNode):
        f.error(node, f"{what} must be a mapping")
        return {}
    out = {}
    for key_node, value_node in node.value:
        value = _scalar(f, value_node, f"{what} value of {key_node.value}")
        if value is not None:
            out[key_node.value] = (value, key_node)
    return out


def _duration(f: _File, node: yaml.Node, what: str) -> float | None:
    text = _scalar(f, node, what)
    if text is None:
        return None
    try:
        return parse_duration(text)
    except ValueError as exc:
        f.error(node, f"{what}: {exc}")
        return None


def _load_rule(f: _File, node: yaml.Node, ext: dict[str, str], url: str) -> Rule | None:
    fields = _mapping(f, node, "rule", RULE_KEYS)
    if not fields and not isinstance(node, yaml.MappingNode):
        return None
    before = len(f.errors)
    record = _scalar(f, fields["record"][1], "record") if "record" in fields else None
    alert = _scalar(f, fields["alert"][1], "alert") if "alert" in fields else None
    if record and alert:
        f.error(node, "only one of 'record' and 'alert' must be set")
    elif not record and not alert:
        f.error(node, "one of 'record' or 'alert' must be set")
    name = record or alert or "?"
    expr = _scalar(f, fields["expr"][1], "expr") if "expr" in fields else None
    if not expr or not expr.strip():
        f.error(node, f"rule {name!r}: field 'expr' must be set in rule")
    else:
        try:
            compile_expr(expr)
        except UnsupportedError as exc:
            f.error(fields["expr"][1], f"rule {name!r}: {exc}")
        except QueryError as exc:
            f.error(fields["expr"][1], f"rule {name!r}: could not parse expression: {exc}")
    if record is not None:
        for key in ("for", "keep_firing_for", "annotations"):
            if key in fields:
                f.error(fields[key][0], f"rule {name!r}: invalid field '{key}' in recording rule")
        if record and not METRIC_NAME_RE.match(record):
            f.error(fields["record"][1], f"invalid recording rule name: {record}")
    for_s = _duration(f, fields["for"][1], "for") if "for" in fields else 0.0
    keep_s = (
        _duration(f, fields["keep_firing_for"][1], "keep_firing_for")
        if "keep_firing_for" in fields
        else 0.0
    )
    labels = _string_map(f, fields["labels"][1], "labels") if "labels" in fields else {}
    annotations = (
        _string_map(f, fields["annotations"][1], "annotations") if "annotations" in fields else {}
    )
    for key, (_, key_node) in labels.items():
        if not LABEL_NAME_RE.match(key) or key == "__name__":
            f.error(key_node, f"rule {name!r}: invalid label name: {key}")
    for key, (_, key_node) in annotations.items():
        if not LABEL_NAME_RE.match(key):
            f.error(key_node, f"rule {name!r}: invalid annotation name: {key}")
    if alert:
        for what, items in (("label", labels), ("annotation", annotations)):
            for key, (text, key_node) in items.items():
                try:
                    parse_template(text, f"__alert_{alert}")
                except TemplateError as exc:
                    f.error(key_node, f"rule {name!r}: {what} {key!r}: {exc}")
    if len(f.errors) > before:
        return None
    label_values = {k: v for k, (v, _) in labels.items()}
    if record:
        return RecordingRule(record, expr, label_values)
    return AlertingRule(
        alert,
        expr,
        for_s=for_s or 0.0,
        keep_firing_for_s=keep_s or 0.0,
        labels=label_values,
        annotations={k: v for k, (v, _) in annotations.items()},
        external_labels=ext,
        external_url=url,
    )


def _load_file(
    path: str, default_interval_s: float, ext: dict[str, str], url: str
) -> tuple[list[RuleGroup], list[RuleError]]:
    f = _File(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return [], [RuleError(path, 0, f"cannot read rule file: {exc}")]
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 0
        problem = getattr(exc, "problem", None) or str(exc)
        return [], [RuleError(path, line, f"YAML syntax error: {problem}")]
    if root is None:
        return [], []
    top = _mapping(f, root, "rule file", {"groups"})
    if "groups" not in top:
        return [], f.errors
    groups_node = top["groups"][1]
    if not isinstance(groups_node, yaml.SequenceNode):
        f.error(groups_node, "groups must be a list")
        return [], f.errors
    groups: list[RuleGroup] = []
    seen: set[str] = set()
    for group_node in groups_node.value:
        fields = _mapping(f, group_node, "rule group", GROUP_KEYS)
        name = _scalar(f, fields["name"][1], "group name") if "name" in fields else None
        if not name:
            f.error(group_node, "Groupname must not be empty")
            name = ""
        elif name in seen:
            f.error(fields["name"][1], f'groupname: "{name}" is repeated in the same file')
        seen.add(name)
        interval = default_interval_s
        if "interval" in fields:
            interval = _duration(f, fields["interval"][1], "interval") or default_interval_s
        limit = 0
        if "limit" in fields:
            text = _scalar(f, fields["limit"][1], "limit")
            if text is not None and not re.fullmatch(r"\d+", text):
                f.error(fields["limit"][1], f"limit must be a non-negative integer, got {text!r}")
            elif text is not None:
                limit = int(text)
        rules: list[Rule] = []
        rules_node = fields.get("rules", (None, None))[1]
        if rules_node is not None and not (
            isinstance(rules_node, yaml.ScalarNode) and rules_node.tag.endswith(":null")
        ):
            if not isinstance(rules_node, yaml.SequenceNode):
                f.error(rules_node, "rules must be a list")
            else:
                for rule_node in rules_node.value:
                    rule = _load_rule(f, rule_node, ext, url)
                    if rule is not None:
                        rules.append(rule)
        groups.append(RuleGroup(name, path, interval, rules, limit))
    return groups, f.errors


def load_rule_files(
    paths: Iterable[str | Path],
    *,
    default_interval_s: float = 60,
    external_labels: dict[str, str] | None = None,
    external_url: str = "",
) -> list[RuleGroup]:
    groups: list[RuleGroup] = []
    errors: list[RuleError] = []
    for path in paths:
        found, problems = _load_file(
            str(path), default_interval_s, dict(external_labels or {}), external_url
        )
        groups.extend(found)
        errors.extend(problems)
    if errors:
        raise RuleFileError(errors)
    return groups


def check_rule_files(paths: Iterable[str | Path]) -> list[RuleError]:
    try:
        load_rule_files(paths)
    except RuleFileError as exc:
        return exc.errors
    return []
