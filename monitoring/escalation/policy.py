"""The escalation policies file (``deploy/alertmanager/escalation.yml``, beside the notifier's
configuration; ``ESCALATION_CONFIG`` overrides the path).

    policies:                          # the first policy whose matchers all match applies
      - name: critical
        match: ['severity="critical"'] # Alertmanager matchers, as the notifier's routes
        levels:
          - level: 1                   # automated response
            after: 0s                  # since the alert started firing
            actions:
              - {action: pool_restart}                     # Celery remote control
              - {action: purge_queue, queue: reports}
              - {action: clear_cache, cache: default}
              - {action: command, command: clearsessions, args: []}
            receivers: [devops]        # told what was done
          - {level: 2, after: 1m, receivers: [oncall]}
          - {level: 3, after: 15m, receivers: [senior]}
          - level: 4
            after: 30m
            receivers: [management]
            notice: {title: Service disruption, message: Some orders may be delayed.}

Levels are 1 to 4, each at most once, in increasing `after`; `actions` only on level 1,
`notice` only on level 4. Receivers must exist in the notifier's configuration when it is
given (`known_receivers`). Every problem is reported as ``file:line: problem``
(``ConfigError``); ``LoadedPolicies`` keeps the last good file when a reload fails.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from monitoring.configfile import ConfigError, Reader
from monitoring.notify.matchers import MatcherError, Matchers, parse_matcher
from monitoring.rules.gofmt import parse_duration_ms

__all__ = [
    "ACTIONS",
    "Action",
    "Level",
    "LoadedPolicies",
    "Policies",
    "Policy",
    "escalation_file",
    "escalation_path",
    "policies_load",
]

logger = logging.getLogger(__name__)

# Each action kind and the keys it takes (besides `action`), with the required ones.
ACTIONS: dict[str, tuple[set[str], set[str]]] = {
    "pool_restart": ({"destination"}, set()),
    "purge_queue": ({"queue"}, {"queue"}),
    "clear_cache": ({"cache"}, set()),
    "command": ({"command", "args"}, {"command"}),
}


@dataclass(frozen=True)
class Action:
    kind: str
    options: Mapping[str, object] = field(default_factory=dict)

    def describe(self) -> str:
        extra = " ".join(
            f"{k}={' '.join(v) if isinstance(v, list) else v}" for k, v in self.options.items()
        )
        return f"{self.kind} {extra}".strip()


@dataclass(frozen=True)
class Level:
    number: int
    after_ms: int
    receivers: tuple[str, ...] = ()
    actions: tuple[Action, ...] = ()
    notice: Mapping[str, str] | None = None


@dataclass(frozen=True)
class Policy:
    name: str
    matchers: Matchers
    levels: tuple[Level, ...]


@dataclass(frozen=True)
class Policies:
    policies: tuple[Policy, ...] = ()

    def match(self, labels: Mapping[str, str]) -> Policy | None:
        for policy in self.policies:
            if policy.matchers.matches(labels):
                return policy
        return None


def escalation_file(
    notify_config: Path | str | None, env: Mapping[str, str] | None = None
) -> Path | None:
    """ESCALATION_CONFIG, else `escalation.yml` beside the notifier's configuration when it
    exists; None: no policies (a test's copy of alertmanager.yml escalates nothing)."""
    env = os.environ if env is None else env
    if env.get("ESCALATION_CONFIG"):
        return Path(env["ESCALATION_CONFIG"])
    if notify_config is None:
        return None
    beside = Path(notify_config).with_name("escalation.yml")
    return beside if beside.exists() else None


def escalation_path(env: Mapping[str, str] | None = None) -> Path | None:
    """The app's: beside its NOTIFY_CONFIG setting (see `escalation_file`)."""
    from django.conf import settings

    return escalation_file(settings.NOTIFY_CONFIG, env)


def policies_load(
    path: Path | str, text: str | None = None, *, known_receivers: Iterable[str] | None = None
) -> Policies:
    """Read and validate the file; raises ConfigError with `file:line: problem` lines."""
    reader = Reader(path, text)
    reader.raise_if_errors()
    known = None if known_receivers is None else set(known_receivers)
    top = reader.mapping(reader.root, "escalation", allowed={"policies"}, required={"policies"})
    policies, names = [], set()
    for i, node in enumerate(reader.sequence(top.get("policies"), "policies")):
        where = f"policies[{i}]"
        keys = reader.mapping(
            node, where, allowed={"name", "match", "levels"}, required={"name", "levels"}
        )
        name = reader.string(keys.get("name"), f"{where}.name", "") or ""
        if name in names:
            reader.error(keys["name"], f"{where}.name: duplicate policy {name!r}")
        names.add(name)
        matchers = []
        for m_node in reader.sequence(keys.get("match"), f"{where}.match"):
            text_ = reader.string(m_node, f"{where}.match")
            if text_ is None:
                continue
            try:
                matchers.append(parse_matcher(text_))
            except MatcherError as exc:
                reader.error(m_node, f"{where}.match: {exc}")
        levels = _levels(reader, keys.get("levels"), f"{where}.levels", known)
        policies.append(Policy(name, Matchers.of(matchers), tuple(levels)))
    reader.raise_if_errors()
    return Policies(tuple(policies))


def _levels(reader: Reader, node, where: str, known: set[str] | None) -> list[Level]:
    levels: list[Level] = []
    for j, l_node in enumerate(reader.sequence(node, where)):
        lw = f"{where}[{j}]"
        keys = reader.mapping(
            l_node,
            lw,
            allowed={"level", "after", "receivers", "actions", "notice"},
            required={"level", "after"},
        )
        number = reader.number(keys["level"], f"{lw}.level") if "level" in keys else None
        if number is not None and (number not in (1, 2, 3, 4) or number != int(number)):
            reader.error(keys["level"], f"{lw}.level: must be 1, 2, 3 or 4")
            number = None
        after = _after(reader, keys.get("after"), f"{lw}.after")
        receivers = []
        for r_node in reader.sequence(keys.get("receivers"), f"{lw}.receivers"):
            receiver = reader.string(r_node, f"{lw}.receivers")
            if receiver is not None and known is not None and receiver not in known:
                reader.error(r_node, f"{lw}.receivers: no receiver {receiver!r} in the notifier")
            elif receiver is not None:
                receivers.append(receiver)
        actions = _actions(reader, keys.get("actions"), f"{lw}.actions")
        if actions and number not in (None, 1):
            reader.error(keys["actions"], f"{lw}.actions: only level 1 runs actions")
        notice = None
        if "notice" in keys:
            n = reader.mapping(
                keys["notice"], f"{lw}.notice", allowed={"title", "message"}, required={"title"}
            )
            notice = {k: reader.string(v, f"{lw}.notice.{k}", "") or "" for k, v in n.items()}
            if number not in (None, 4):
                reader.error(keys["notice"], f"{lw}.notice: only level 4 shows a customer notice")
        if number is None or after is None:
            continue
        previous = levels[-1] if levels else None
        if previous is not None and (number <= previous.number or after < previous.after_ms):
            reader.error(l_node, f"{lw}: levels must go up, with `after` not decreasing")
        levels.append(Level(int(number), after, tuple(receivers), tuple(actions), notice))
    if not levels and node is not None:
        reader.error(node, f"{where}: at least one level is needed")
    return levels


def _after(reader: Reader, node, where: str) -> int | None:
    text = reader.string(node, where)
    if text is None:
        return None
    value = 0 if text in ("0", "0s") else parse_duration_ms(text)
    if value is None or value < 0:
        reader.error(node, f"{where}: {text!r} is not a duration (like 0s, 5m, 1h)")
        return None
    return value


def _actions(reader: Reader, node, where: str) -> list[Action]:
    actions = []
    for k, a_node in enumerate(reader.sequence(node, where)):
        aw = f"{where}[{k}]"
        raw = reader.mapping(a_node, aw, allowed={"action"} | _ALL_KEYS, required={"action"})
        kind = reader.string(raw.get("action"), f"{aw}.action")
        if kind is None:
            continue
        if kind not in ACTIONS:
            reader.error(raw["action"], f"{aw}.action: unknown action {kind!r}"
                         f" (one of {', '.join(sorted(ACTIONS))})")  # fmt: skip
            continue
        allowed, required = ACTIONS[kind]
        options: dict[str, object] = {}
        for key, value in raw.items():
            if key == "action":
                continue
            if key not in allowed:
                reader.error(value, f"{aw}: {kind} takes no {key!r}")
            elif key == "args":
                options[key] = [
                    reader.string(v, f"{aw}.args") or "" for v in reader.sequence(value, aw)
                ]
            else:
                options[key] = reader.string(value, f"{aw}.{key}") or ""
        missing = required - set(raw)
        if missing:
            reader.error(a_node, f"{aw}: {kind} needs {', '.join(sorted(missing))}")
        actions.append(Action(kind, options))
    return actions


_ALL_KEYS = set().union(*(allowed for allowed, _ in ACTIONS.values()))


@dataclass
class LoadedPolicies:
    """The file as a process runs it: `load()` switches to it when valid, else keeps the last
    good policies and reports why (`errors`)."""

    path: Path | None
    known_receivers: Iterable[str] | None = None
    policies: Policies = field(default_factory=Policies)
    errors: list[str] = field(default_factory=list)

    def load(self) -> list[str]:
        if self.path is None or not Path(self.path).exists():
            self.errors = []
            return []
        try:
            policies = policies_load(self.path, known_receivers=self.known_receivers)
        except ConfigError as exc:
            self.errors = list(exc.errors)
            logger.error(
                "escalation policies %s do not load, keeping the running ones: %s",
                self.path,
                "; ".join(self.errors),
                extra={"config_errors": self.errors},
            )
            return self.errors
        self.policies, self.errors = policies, []
        return []
