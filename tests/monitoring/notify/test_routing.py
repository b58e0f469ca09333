"""Route options, group keys and inhibition (dispatch/route.go, dispatch.go, inhibit.go)."""

from pathlib import Path

from monitoring.notify.config import config_load
from monitoring.notify.routing import Inhibitor, Route

SHIPPED = Path(__file__).resolve().parents[3] / "deploy" / "alertmanager" / "alertmanager.yml"
TANGLED = Path(__file__).parent / "tangled.yml"


def tangled() -> Route:
    return Route.build(config_load(TANGLED, env={}).route)


def test_options_are_inherited_and_overridden() -> None:
    route = tangled()
    pager = route.match({"env": "staging", "severity": "warning"})[0]
    # The staging route matched too, but a child of it did, so the child is the match.
    assert pager.parent is not None and pager.parent.options.receiver == "staging"
    assert pager.options.receiver == "staging-pager"
    assert pager.options.group_by == {"alertname"} and not pager.options.group_by_all
    assert (pager.options.group_wait_ms, pager.options.group_interval_ms) == (10_000, 60_000)
    assert pager.options.repeat_interval_ms == 3 * 3_600_000
    critical = route.match({"severity": "critical", "team": "devops"})[0]
    assert critical.options.receiver == "pager" and critical.options.group_wait_ms == 0
    assert critical.options.group_by_all  # '...' from the root
    # A route without a receiver takes its parent's.
    [team] = [r for r in route.walk() if r.options.receiver == "fallback" and r.parent]
    assert team.options.receiver == "fallback"


def test_group_key_and_labels() -> None:
    route = tangled()
    labels = {"alertname": "A", "env": "staging", "severity": "critical", "x": 'q"'}
    staging_pager = route.match(labels)[0]
    assert staging_pager.group_labels(labels) == {"alertname": "A"}
    assert staging_pager.group_key(labels) == (
        '{}/{env="staging"}/{severity=~"critical|warning"}:{alertname="A"}'
    )
    assert staging_pager.group_key({"alertname": "B"}) == staging_pager.group_key(
        {"alertname": "B", "x": "y"}
    )
    everything = route.match({"severity": "critical", "team": "x", "b": "2", "a": "1"})[0]
    assert everything.group_key({"a": "1", "a0": "2", "a_": "3"}).endswith(
        ':{a0="2", a="1", a_="3"}'
    )
    assert everything.group_key({"b": "2", "a": 'q"'}) == (
        '{}/{severity="critical",team!~"product|security"}:{a="q\\"", b="2"}'
    )


def test_default_route_when_no_child_matches() -> None:
    route = tangled()
    assert [r.options.receiver for r in route.match({"alertname": "Watchdog"})] == ["deadman"]
    assert route.receivers({"alertname": "X", "severity": "none"}) == ["fallback"]


def test_shipped_routing_follows_the_specification() -> None:
    route = Route.build(config_load(SHIPPED, env={}).route)
    assert route.receivers({"alertname": "Watchdog", "severity": "none", "team": "devops"}) == [
        "deadmans-switch"
    ]
    critical = route.match(
        {"alertname": "HighErrorRate", "severity": "critical", "team": "development"}
    )
    assert [r.options.receiver for r in critical] == [
        "dashboard",
        "slack-critical",
        "oncall",
        "email-development",
    ]
    assert {r.options.group_wait_ms for r in critical} == {0}  # in real time, everywhere
    warning = route.match({"alertname": "HighCpuUsage", "severity": "warning", "team": "devops"})
    assert [r.options.receiver for r in warning] == ["dashboard", "slack-warnings", "email-devops"]
    assert [r.options.group_wait_ms for r in warning] == [0, 30_000, 30_000]
    # Product has no address of its own (the primary contact); security has its own (issue 13).
    assert route.receivers({"severity": "info", "team": "product"}) == ["dashboard", "email-devops"]
    assert route.receivers({"severity": "info", "team": "security"}) == [
        "dashboard",
        "email-security",
    ]


def test_inhibition_as_shipped() -> None:
    inhibitor = Inhibitor.from_config(config_load(SHIPPED, env={}))
    warning = {"alertname": "HighCpuUsage", "severity": "warning", "instance": "a:1", "job": "j"}
    critical = {**warning, "severity": "critical"}
    assert inhibitor.is_inhibited(warning, [critical])
    assert not inhibitor.is_inhibited(warning, [{**critical, "instance": "b:1"}])
    assert not inhibitor.is_inhibited(warning, [{**critical, "alertname": "Other"}])
    assert not inhibitor.is_inhibited(critical, [warning])
    down = {"alertname": "TargetDown", "severity": "critical", "instance": "a:1", "job": "j"}
    assert inhibitor.index([warning, down]).inhibited_by(critical) == down
    assert inhibitor.is_inhibited({**warning, "alertname": "Slow"}, [down])
    assert not inhibitor.is_inhibited(warning, [{**down, "job": "other"}])
    assert not inhibitor.is_inhibited(down, [down])  # never itself
    watchdog = {"alertname": "Watchdog", "severity": "none"}
    assert not inhibitor.is_inhibited(watchdog, [{**down, "instance": "", "job": ""}])


def test_inhibition_rules_of_both_syntaxes_and_two_sided_matches(tmp_path) -> None:
    inhibitor = Inhibitor.from_config(config_load(TANGLED, env={}))
    # The old syntax: source_match / target_match_re.
    info = {"alertname": "A", "severity": "info", "instance": "i"}
    assert inhibitor.is_inhibited(info, [{**info, "severity": "critical"}])
    # An equal label missing on both sides counts as equal (both empty).
    assert inhibitor.is_inhibited(
        {"alertname": "A", "severity": "warning"}, [{"alertname": "A", "severity": "critical"}]
    )
    maintenance = {"alertname": "MaintenanceDb"}
    assert inhibitor.is_inhibited({"env": "staging", "alertname": "X"}, [maintenance])
    assert not inhibitor.is_inhibited({"env": "prod", "alertname": "X"}, [maintenance])
    # An alert matching both sides is not inhibited by another that matches both sides.
    path = tmp_path / "am.yml"
    path.write_text(
        "route: {receiver: r}\nreceivers: [{name: r}]\n"
        "inhibit_rules: [{source_matchers: ['a=~x|y'], target_matchers: ['a=~x|y|z']}]\n"
    )
    two_sided = Inhibitor.from_config(config_load(path, env={}))
    assert not two_sided.is_inhibited({"a": "x"}, [{"a": "y"}])
    assert two_sided.is_inhibited({"a": "z"}, [{"a": "y"}])


def mutes_as_inhibit_go(rules, labels, firing) -> bool:
    """inhibit.go's Mutes/hasEqual read literally: a scan of every firing source alert."""
    for rule in rules:
        if not rule.target.matches(labels):
            continue
        two_sided = rule.source.matches(labels)
        for source in firing:
            if not rule.source.matches(source):
                continue
            if any(source.get(n, "") != labels.get(n, "") for n in rule.equal):
                continue
            if two_sided and rule.target.matches(source):
                continue
            return True
    return False


def test_the_inhibition_index_agrees_with_a_scan() -> None:
    import random

    config = config_load(TANGLED, env={})
    shipped = config_load(SHIPPED, env={})
    rng = random.Random(5)
    values = {
        "alertname": ["TargetDown", "A", "B", "MaintenanceX"],
        "severity": ["critical", "warning", "info"],
        "instance": ["i1", "i2"],
        "job": ["j1", "j2"],
        "env": ["staging", "prod"],
    }
    for rules in (config.inhibit_rules, shipped.inhibit_rules):
        inhibitor = Inhibitor(rules)
        for _ in range(200):
            firing = [
                {k: rng.choice(v) for k, v in values.items() if rng.random() < 0.8}
                for _ in range(rng.randint(0, 6))
            ]
            index = inhibitor.index(firing)
            for labels in firing + [{k: rng.choice(v) for k, v in values.items()}]:
                assert (index.inhibited_by(labels) is not None) == mutes_as_inhibit_go(
                    rules, labels, firing
                ), (labels, firing)
