"""Load and validate Prometheus rule files, the way ``promtool check rules`` does.

Public surface (stable):

- ``load_rule_files(paths, *, default_interval_s=60, external_labels=None, external_url="")
  -> list[RuleGroup]``: every group of every file, in order.  Raises
  ``monitoring.configfile.ConfigError`` whose ``errors`` lists every problem found in all
  files as ``file:line: message``, in the order found (nothing is half-loaded).
- ``check_rule_files(paths) -> list[str]``: the same validation, returning the problems.
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
from pathlib import Path

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from monitoring.configfile import ConfigError, Reader
from monitoring.rules.alerting import AlertingRule, RecordingRule, Rule
from monitoring.rules.errors import QueryError, UnsupportedError
from monitoring.rules.expr import compile_expr
from monitoring.rules.gofmt import LABEL_NAME_RE, parse_duration
from monitoring.rules.group import RuleGroup
from monitoring.rules.template import TemplateError, parse_template

METRIC_NAME_RE = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")

GROUP_KEYS = {"name", "interval", "limit", "rules"}
RULE_KEYS = {"record", "alert", "expr", "for", "keep_firing_for", "labels", "annotations"}


class _RuleFile(Reader):
    """One rule file read in promtool's dialect: its messages are the ones promtool prints."""

    def unreadable(self, exc: OSError | UnicodeDecodeError) -> str:
        return f"cannot read rule file: {exc}"

    def unparsable(self, problem: str) -> str:
        return f"YAML syntax error: {problem}"

    def fields(self, node: Node, what: str, allowed: set[str]) -> dict[str, tuple[Node, Node]]:
        """Key -> (key node, value node) for a mapping node, reporting unknown/duplicate keys."""
        if not isinstance(node, MappingNode):
            self.error(node, f"{what} must be a mapping")
            return {}
        out: dict[str, tuple[Node, Node]] = {}
        for key_node, value_node in node.value:
            key = key_node.value
            if key not in allowed:
                self.error(key_node, f"field {key} not found in {what}")
                continue
            if key in out:
                self.error(key_node, f"mapping key {key!r} already defined in {what}")
                continue
            out[key] = (key_node, value_node)
        return out

    def scalar(self, node: Node, what: str) -> str | None:
        if not isinstance(node, ScalarNode):
            self.error(node, f"{what} must be a string")
            return None
        return node.value

    def string_map(self, node: Node, what: str) -> dict[str, tuple[str, Node]]:
        if isinstance(node, ScalarNode) and node.tag == "tag:yaml.org,2002:null":
            return {}
        if not isinstance(node, MappingNode):
            self.error(node, f"{what} must be a mapping")
            return {}
        out = {}
        for key_node, value_node in node.value:
            value = self.scalar(value_node, f"{what} value of {key_node.value}")
            if value is not None:
                out[key_node.value] = (value, key_node)
        return out

    def duration_s(self, node: Node, what: str) -> float | None:
        text = self.scalar(node, what)
        if text is None:
            return None
        try:
            return parse_duration(text)
        except ValueError as exc:
            self.error(node, f"{what}: {exc}")
            return None


def _load_rule(f: _RuleFile, node: Node, ext: dict[str, str], url: str) -> Rule | None:
    fields = f.fields(node, "rule", RULE_KEYS)
    if not fields and not isinstance(node, MappingNode):
        return None
    before = len(f.errors)
    record = f.scalar(fields["record"][1], "record") if "record" in fields else None
    alert = f.scalar(fields["alert"][1], "alert") if "alert" in fields else None
    if record and alert:
        f.error(node, "only one of 'record' and 'alert' must be set")
    elif not record and not alert:
        f.error(node, "one of 'record' or 'alert' must be set")
    name = record or alert or "?"
    expr = f.scalar(fields["expr"][1], "expr") if "expr" in fields else None
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
    for_s = f.duration_s(fields["for"][1], "for") if "for" in fields else 0.0
    keep_s = (
        f.duration_s(fields["keep_firing_for"][1], "keep_firing_for")
        if "keep_firing_for" in fields
        else 0.0
    )
    labels = f.string_map(fields["labels"][1], "labels") if "labels" in fields else {}
    annotations = (
        f.string_map(fields["annotations"][1], "annotations") if "annotations" in fields else {}
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
) -> tuple[list[RuleGroup], list[str]]:
    f = _RuleFile(path)
    root = f.root
    if root is None:  # unreadable, not YAML (both reported), or empty
        return [], f.errors
    top = f.fields(root, "rule file", {"groups"})
    if "groups" not in top:
        return [], f.errors
    groups_node = top["groups"][1]
    if not isinstance(groups_node, SequenceNode):
        f.error(groups_node, "groups must be a list")
        return [], f.errors
    groups: list[RuleGroup] = []
    seen: set[str] = set()
    for group_node in groups_node.value:
        fields = f.fields(group_node, "rule group", GROUP_KEYS)
        name = f.scalar(fields["name"][1], "group name") if "name" in fields else None
        if not name:
            f.error(group_node, "Groupname must not be empty")
            name = ""
        elif name in seen:
            f.error(fields["name"][1], f'groupname: "{name}" is repeated in the same file')
        seen.add(name)
        interval = default_interval_s
        if "interval" in fields:
            interval = f.duration_s(fields["interval"][1], "interval") or default_interval_s
        limit = 0
        if "limit" in fields:
            text = f.scalar(fields["limit"][1], "limit")
            if text is not None and not re.fullmatch(r"\d+", text):
                f.error(fields["limit"][1], f"limit must be a non-negative integer, got {text!r}")
            elif text is not None:
                limit = int(text)
        rules: list[Rule] = []
        rules_node = fields.get("rules", (None, None))[1]
        if rules_node is not None and not (
            isinstance(rules_node, ScalarNode) and rules_node.tag.endswith(":null")
        ):
            if not isinstance(rules_node, SequenceNode):
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
    errors: list[str] = []
    for path in paths:
        found, problems = _load_file(
            str(path), default_interval_s, dict(external_labels or {}), external_url
        )
        groups.extend(found)
        errors.extend(problems)
    if errors:
        raise ConfigError(errors)
    return groups


def check_rule_files(paths: Iterable[str | Path]) -> list[str]:
    try:
        load_rule_files(paths)
    except ConfigError as exc:
        return exc.errors
    return []
