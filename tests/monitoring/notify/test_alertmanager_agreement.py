"""Grouping and inhibition held to a real Alertmanager 0.25 (Debian's prometheus-alertmanager).

Alertmanager runs on the shipped and the tangled file; generated alerts are posted to its API.
Its `/api/v2/alerts/groups` says which (receiver, group labels) groups each alert is in, and
`/api/v2/alerts` which alerts are inhibited; the router and `Inhibitor` must say the same.
"""

from __future__ import annotations

import random
import shutil
from datetime import UTC, datetime, timedelta

import pytest

from monitoring.notify.config import config_load
from monitoring.notify.environment import config_render
from monitoring.notify.routing import Inhibitor, Route
from tests.monitoring.notify.real_alertmanager import call
from tests.monitoring.notify.test_amtool_agreement import POOLS, SHIPPED, TANGLED
from tests.wait import wait_for

ALERTS = 150


def generated_alerts(seed: int) -> list[dict[str, str]]:
    rng = random.Random(seed)
    alerts: dict[tuple, dict[str, str]] = {}
    while len(alerts) < ALERTS:
        labels = {
            name: value
            for name, values in POOLS.items()
            if name != "note" and rng.random() < 0.7 and (value := rng.choice(values))
        }
        labels.setdefault("alertname", "A")
        alerts[tuple(sorted(labels.items()))] = labels
    return list(alerts.values())


@pytest.mark.parametrize("config, seed", [(SHIPPED, 3), (TANGLED, 4)], ids=["shipped", "tangled"])
def test_groups_and_inhibition_agree_with_alertmanager(alertmanager, config, seed, tmp_path):
    # Every endpoint at 127.0.0.1:9, where nothing listens: Alertmanager sends nowhere.
    nowhere = "http://127.0.0.1:9"
    env = {"EMAIL_HOST": "127.0.0.1", "EMAIL_PORT": "9", "APP_URL": nowhere}
    env |= {"MONITORING_TOKEN": "token"}  # no webhook to the app renders without one
    env |= {"SLACK_WEBHOOK_URL": f"{nowhere}/slack", "WATCHDOG_WEBHOOK_URL": f"{nowhere}/w"}
    rendered = tmp_path / "alertmanager.yml"
    rendered.write_text(config_render(config, env))
    if (config.parent / "templates").is_dir():  # the `templates:` globs are relative
        shutil.copytree(config.parent / "templates", tmp_path / "templates")
    url = alertmanager(rendered)
    alerts = generated_alerts(seed)
    now = datetime.now(UTC)
    call(
        f"{url}/api/v2/alerts",
        [
            {
                "labels": labels,
                "startsAt": now.isoformat(),
                "endsAt": (now + timedelta(hours=1)).isoformat(),
            }
            for labels in alerts
        ],
    )
    key = lambda labels: tuple(sorted(labels.items()))  # noqa: E731

    loaded = config_load(rendered, env={})
    route = Route.build(loaded.route)
    index = Inhibitor.from_config(loaded).index(alerts)
    ours_inhibited = {key(a) for a in alerts if index.inhibited_by(a) is not None}
    assert ours_inhibited, "the generated alerts should exercise inhibition"

    # Alertmanager's inhibitor takes new alerts in asynchronously: wait (up to a generous
    # deadline) for it to reach our answer; if it never does, show the difference.
    theirs_inhibited: set | None = None

    def agreed() -> bool:
        nonlocal theirs_inhibited
        listed = call(f"{url}/api/v2/alerts")
        theirs_inhibited = {key(a["labels"]) for a in listed if a["status"]["inhibitedBy"]}
        return len(listed) == len(alerts) and theirs_inhibited == ours_inhibited

    try:
        wait_for(agreed, timeout=60, what="Alertmanager's inhibition", interval=0.2)
    except AssertionError:
        assert theirs_inhibited == ours_inhibited

    def grouped() -> dict[tuple, set] | None:
        groups: dict[tuple, set] = {key(a): set() for a in alerts}
        for group in call(f"{url}/api/v2/alerts/groups"):
            for alert in group["alerts"]:
                groups[key(alert["labels"])].add((group["receiver"]["name"], key(group["labels"])))
        return groups if all(groups.values()) else None  # every alert dispatched

    theirs_groups = wait_for(grouped, timeout=60, what="every alert grouped", interval=0.2)
    ours_groups = {
        key(a): {(r.options.receiver, key(r.group_labels(a))) for r in route.match(a)}
        for a in alerts
    }
    assert ours_groups == theirs_groups
