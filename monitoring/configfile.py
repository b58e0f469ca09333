"""Configuration files: one YAML reader with line numbers and one error type for every file the
project reads (prometheus.yml, rule files, alertmanager.yml, thresholds.yml).

- `ConfigError(errors)`: a file was refused; `errors` holds one `file:line: problem` per problem.
- `Reader(path, text=None)`: PyYAML's `compose` gives the node tree with marks; the reader walks
  it, collects every problem (not just the first) and returns plain Python values. Callers raise
  `ConfigError` at the end (`raise_if_errors`). A file's own dialect of messages (the rule
  loader speaks promtool's) subclasses it and overrides `unreadable`/`unparsable`.

It sits below tsdb, rules and monitor, so all of them may import it: it imports only the leaf
`monitoring.rules.gofmt` (never the PromQL engine; web workers load thresholds through it).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from monitoring.rules.gofmt import LABEL_NAME_RE, parse_duration_ms


class ConfigError(Exception):
    """A configuration file was refused. `errors` holds one `file:line: problem` per problem."""

    def __init__(self, errors: list[str]):
        super().__init__("\n".join(errors))
        self.errors = errors


class Reader:
    """Walks one YAML file's node tree, recording problems as `file:line: problem`."""

    def __init__(self, path: Path | str, text: str | None = None):
        self.path = str(path)
        self.errors: list[str] = []
        self.root: Node | None = None
        try:
            source = Path(path).read_text(encoding="utf-8") if text is None else text
        except (OSError, UnicodeDecodeError) as exc:
            self.errors.append(f"{self.path}:0: {self.unreadable(exc)}")
            return
        try:
            self.root = yaml.compose(source, Loader=yaml.SafeLoader)
        except yaml.reader.ReaderError as exc:  # a character YAML does not allow
            line = source[: exc.position].count("\n") + 1
            problem = f"unacceptable character #x{exc.character:04x}: {exc.reason}"
            self.errors.append(f"{self.path}:{line}: {self.unparsable(problem)}")
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line = mark.line + 1 if mark else 0
            self.errors.append(f"{self.path}:{line}: {self.unparsable(exc.problem or str(exc))}")

    def unreadable(self, exc: OSError | UnicodeDecodeError) -> str:
        """The problem reported for a file that cannot be read."""
        return f"cannot read file: {getattr(exc, 'strerror', None) or exc}"

    def unparsable(self, problem: str) -> str:
        """The problem reported for a file that is not YAML."""
        return f"invalid YAML: {problem}"

    def error(self, node: Node | None, problem: str) -> None:
        line = node.start_mark.line + 1 if node is not None else 1
        self.errors.append(f"{self.path}:{line}: {problem}")

    def sorted_errors(self) -> list[str]:
        """The problems in file order, as an operator reads them top to bottom."""
        prefix = len(self.path) + 1
        return sorted(self.errors, key=lambda e: int(e[prefix:].split(":", 1)[0]))

    def raise_if_errors(self) -> None:
        if self.errors:
            raise ConfigError(self.sorted_errors())

    def mapping(
        self,
        node: Node | None,
        where: str,
        *,
        allowed: set[str] | frozenset[str],
        required: set[str] | frozenset[str] = frozenset(),
    ) -> dict[str, Node]:
        """The keys of a mapping node; unknown, duplicate and missing keys are errors."""
        if node is None or (isinstance(node, ScalarNode) and node.tag.endswith(":null")):
            node_map: dict[str, Node] = {}
            if required:
                self.error(node, f"{where}: missing {', '.join(sorted(required))}")
            return node_map
        if not isinstance(node, MappingNode):
            self.error(node, f"{where}: expected a mapping")
            return {}
        out: dict[str, Node] = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, ScalarNode) else None
            if key is None:
                self.error(key_node, f"{where}: keys must be strings")
            elif key in out:
                self.error(key_node, f"{where}: duplicate key {key!r}")
            elif key not in allowed:
                self.error(key_node, f"{where}: unknown key {key!r}")
            else:
                out[key] = value_node
        missing = set(required) - set(out)
        if missing:
            self.error(node, f"{where}: missing {', '.join(sorted(missing))}")
        return out

    def sequence(self, node: Node | None, where: str) -> Iterator[Node]:
        if node is None or (isinstance(node, ScalarNode) and node.tag.endswith(":null")):
            return iter(())
        if not isinstance(node, SequenceNode):
            self.error(node, f"{where}: expected a list")
            return iter(())
        return iter(node.value)

    def string(self, node: Node | None, where: str, default: str | None = None) -> str | None:
        if node is None:
            return default
        if not isinstance(node, ScalarNode) or node.tag.endswith((":null", ":bool")):
            self.error(node, f"{where}: expected a string")
            return default
        return node.value

    def number(self, node: Node, where: str) -> float | None:
        if isinstance(node, ScalarNode) and node.tag.endswith((":int", ":float")):
            try:
                return float(yaml.safe_load(node.value))
            except (TypeError, ValueError):
                pass
        self.error(node, f"{where}: expected a number, got {_show(node)}")
        return None

    def duration_ms(self, node: Node | None, where: str, default: int) -> int:
        if node is None:
            return default
        text = self.string(node, where)
        if text is None:
            return default
        value = parse_duration_ms(text)
        if value is None or value <= 0:
            self.error(node, f"{where}: {text!r} is not a positive duration (like 15s, 1m, 2h)")
            return default
        return value

    def labels(self, node: Node | None, where: str) -> dict[str, str]:
        out: dict[str, str] = {}
        if node is None:
            return out
        if not isinstance(node, MappingNode):
            self.error(node, f"{where}: expected a mapping of label names to values")
            return out
        for key_node, value_node in node.value:
            name = key_node.value if isinstance(key_node, ScalarNode) else ""
            if not LABEL_NAME_RE.match(name) or name.startswith("__"):
                self.error(key_node, f"{where}: {name!r} is not a valid label name")
                continue
            value = self.string(value_node, f"{where}.{name}")
            if value is not None:
                out[name] = value
        return out


def _show(node: Node) -> str:
    if isinstance(node, ScalarNode):
        return repr(node.value)
    return "a list" if isinstance(node, SequenceNode) else "a mapping"
