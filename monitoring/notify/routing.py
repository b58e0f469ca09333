"""Routing and inhibition as Alertmanager 0.25 does them (dispatch/route.go, inhibit/inhibit.go).

`Route.build(config.route)` makes the tree; `route.match(labels)` returns the routes an alert
takes, in tree order: depth first, a child that matches stops its later siblings unless it has
`continue: true`, and a node none of whose children match is itself the match. Each route
carries its options with the inherited ones filled in (receiver, group_by, timers); mute and
active time intervals are not inherited, as in Alertmanager.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from monitoring.notify.config import Config, InhibitRule, RouteConfig
from monitoring.notify.matchers import Matchers
from monitoring.notify.timeintervals import TimeInterval, any_contains
from monitoring.rules.gofmt import format_go_duration, go_quote

DEFAULT_GROUP_WAIT_MS = 30_000
DEFAULT_GROUP_INTERVAL_MS = 300_000
DEFAULT_REPEAT_INTERVAL_MS = 4 * 3_600_000

Labels = Mapping[str, str]


@dataclass(frozen=True)
class RouteOptions:
    receiver: str
    group_by: frozenset[str] = frozenset()
    group_by_all: bool = False
    group_wait_ms: int = DEFAULT_GROUP_WAIT_MS
    group_interval_ms: int = DEFAULT_GROUP_INTERVAL_MS
    repeat_interval_ms: int = DEFAULT_REPEAT_INTERVAL_MS
    mute_time_intervals: tuple[str, ...] = ()
    active_time_intervals: tuple[str, ...] = ()


@dataclass(eq=False)
class Route:
    options: RouteOptions
    matchers: Matchers
    continue_: bool = False
    parent: Route | None = None
    routes: list[Route] = field(default_factory=list)
    _key: str | None = field(default=None, repr=False)
    # Memos (a cycle routes thousands of alerts that share a few label values): the root's
    # match result by the values of the labels any matcher reads, and group keys by group.
    _names: tuple[str, ...] = field(default=(), repr=False)
    _matches: dict[tuple[str, ...], tuple[Route, ...]] = field(default_factory=dict, repr=False)
    _group_by: tuple[str, ...] = field(default=(), repr=False)
    _group_keys: dict[tuple[tuple[str, str], ...], str] = field(default_factory=dict, repr=False)

    @classmethod
    def build(cls, config: RouteConfig, parent: Route | None = None) -> Route:
        base = parent.options if parent is not None else RouteOptions(receiver="")
        group_by, group_by_all = base.group_by, base.group_by_all
        if config.group_by is not None:
            group_by, group_by_all = frozenset(config.group_by), False
        elif config.group_by_all:
            group_by_all = True
        options = RouteOptions(
            receiver=config.receiver or base.receiver,
            group_by=group_by,
            group_by_all=group_by_all,
            group_wait_ms=_first(config.group_wait_ms, base.group_wait_ms),
            group_interval_ms=_first(config.group_interval_ms, base.group_interval_ms),
            repeat_interval_ms=_first(config.repeat_interval_ms, base.repeat_interval_ms),
            mute_time_intervals=config.mute_time_intervals,
            active_time_intervals=config.active_time_intervals,
        )
        route = cls(options, config.matchers, config.continue_, parent)
        route._group_by = tuple(sorted(group_by))
        route.routes = [cls.build(child, route) for child in config.routes]
        if parent is None:
            route._names = tuple(sorted({m.name for r in route.walk() for m in r.matchers.items}))
        return route

    def match(self, labels: Labels) -> list[Route]:
        """The routes an alert with these labels takes (empty only if this one does not match)."""
        if self.parent is not None:
            return self._match(labels)
        key = tuple(labels.get(name, "") for name in self._names)
        found = self._matches.get(key)
        if found is None:
            found = tuple(self._match(labels))
            _remember(self._matches, key, found)
        return list(found)

    def _match(self, labels: Labels) -> list[Route]:
        if not self.matchers.matches(labels):
            return []
        found: list[Route] = []
        for child in self.routes:
            matched = child._match(labels)
            found.extend(matched)
            if matched and not child.continue_:
                break
        return found or [self]

    def receivers(self, labels: Labels) -> list[str]:
        """Receiver names in tree order, repeats kept, as `amtool config routes test` prints."""
        return [route.options.receiver for route in self.match(labels)]

    def key(self) -> str:
        """Alertmanager's route key: the matchers of each ancestor, joined by '/'."""
        if self._key is None:
            own = str(self.matchers)
            self._key = f"{self.parent.key()}/{own}" if self.parent is not None else own
        return self._key

    def group_labels(self, labels: Labels) -> dict[str, str]:
        """The labels that pick the alert's group on this route (`...`: all of them)."""
        if self.options.group_by_all:
            return dict(labels)
        return {name: value for name, value in labels.items() if name in self.options.group_by}

    def group_key(self, labels: Labels) -> str:
        """Alertmanager's aggregation-group key: `<route key>:{label="value", …}`."""
        if self.options.group_by_all:
            group = tuple(sorted(labels.items()))
        else:
            group = tuple((n, labels[n]) for n in self._group_by if n in labels)
        key = self._group_keys.get(group)
        if key is None:
            # model.LabelSet.String() sorts the `name="value"` strings, not the names
            # (`a0=…` sorts before `a=…`).
            body = ", ".join(sorted(f"{name}={go_quote(value)}" for name, value in group))
            key = f"{self.key()}:{{{body}}}"
            _remember(self._group_keys, group, key)
        return key

    def walk(self) -> Iterable[Route]:
        yield self
        for child in self.routes:
            yield from child.walk()


def _first(value: int | None, default: int) -> int:
    return default if value is None else value


_MEMO_LIMIT = 100_000


def _remember(memo: dict, key, value) -> None:
    if len(memo) >= _MEMO_LIMIT:  # label values without end (a request id): start over
        memo.clear()
    memo[key] = value


def route_is_muted(
    route: Route, when: datetime, intervals: Mapping[str, tuple[TimeInterval, ...]]
) -> bool:
    """Whether the route sends nothing at `when`: inside a mute interval, or outside all of its
    active intervals (a route with no active intervals is always active)."""
    if any(
        any_contains(intervals.get(name, ()), when) for name in route.options.mute_time_intervals
    ):
        return True
    active = route.options.active_time_intervals
    return bool(active) and not any(any_contains(intervals.get(n, ()), when) for n in active)


class Inhibitor:
    """Inhibition rules (Alertmanager's `Inhibitor.Mutes`). `index(firing)` prepares one
    cycle's firing alerts so each check costs one lookup per rule, not a scan of them all."""

    def __init__(self, rules: Iterable[InhibitRule]):
        self.rules = tuple(rules)

    @classmethod
    def from_config(cls, config: Config) -> Inhibitor:
        return cls(config.inhibit_rules)

    def index(self, firing: Iterable[Labels]) -> InhibitionIndex:
        return InhibitionIndex(self.rules, firing)

    def is_inhibited(self, labels: Labels, firing: Iterable[Labels]) -> bool:
        """One check against `firing`; for many, build `index(firing)` once."""
        return self.index(firing).inhibited_by(labels) is not None


class InhibitionIndex:
    """Per rule, the firing source alerts keyed by their `equal` label values: the first
    one, and the first one that does not also match the rule's target (an alert matching both
    sides is only inhibited by one that does not, so two alerts never mute each other)."""

    def __init__(self, rules: tuple[InhibitRule, ...], firing: Iterable[Labels]):
        self.rules = rules
        self.sources: list[dict[tuple[str, ...], tuple[Labels, Labels | None]]] = []
        firing = list(firing)
        for rule in rules:
            by_key: dict[tuple[str, ...], tuple[Labels, Labels | None]] = {}
            for source in firing:
                if not rule.source.matches(source):
                    continue
                key = tuple(source.get(name, "") for name in rule.equal)
                one_sided = None if rule.target.matches(source) else source
                first, first_one_sided = by_key.get(key, (source, None))
                by_key[key] = (first, first_one_sided or one_sided)
            self.sources.append(by_key)

    def inhibited_by(self, labels: Labels) -> Labels | None:
        """The firing alert that inhibits an alert with `labels`, or None."""
        for rule, by_key in zip(self.rules, self.sources, strict=True):
            if not by_key or not rule.target.matches(labels):
                continue
            found = by_key.get(tuple(labels.get(name, "") for name in rule.equal))
            if found is None:
                continue
            first, one_sided = found
            source = one_sided if rule.source.matches(labels) else first
            if source is not None:
                return source
        return None


def route_describe(route: Route) -> str:
    """One line of a route's effective options, as an operator checks them."""
    o = route.options
    group_by = "..." if o.group_by_all else ",".join(sorted(o.group_by))
    parts = [
        f"matchers={route.key()}",
        f"group_by=[{group_by}]",
        f"group_wait={format_go_duration(o.group_wait_ms)}",
        f"group_interval={format_go_duration(o.group_interval_ms)}",
        f"repeat_interval={format_go_duration(o.repeat_interval_ms)}",
    ]
    if o.mute_time_intervals:
        parts.append(f"mute_time_intervals=[{','.join(o.mute_time_intervals)}]")
    if o.active_time_intervals:
        parts.append(f"active_time_intervals=[{','.join(o.active_time_intervals)}]")
    return " ".join(parts)
