"""Grouping and inhibition held to a real Alertmanager 0.25 (Debian's prometheus-alertmanager).

Alertmanager runs on the shipped and the tangled file; generated alerts are posted to its API.
Its `/api/v2/alerts/groups` says which (receiver, group labels) groups each alert is in, and
`/api/v2/alerts` which alerts are inhibited; the router and `Inhibitor` must say the same.
"""

from __future__ import annotations

import json
import random
import shutil
import socket
import subprocess
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from monitoring.notify.config import config_load
from monitoring.notify.environment import config_render
from monitoring.notify.routing import Inhibitor, Route
from tests.monitoring.notify.test_amtool_agreement import POOLS, SHIPPED, TANGLED
from tests.services import require_alertmanager
from tests.wait import wait_for

ALERTS = 150


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def alertmanager(tmp_path: Path):
    require_alertmanager()
    binary = shutil.which("alertmanager") or shutil.which("prometheus-alertmanager")
    started = []

    def start(config: Path) -> str:
        port = free_port()
        process = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.path={tmp_path / 'am'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--cluster.listen-address=",
                "--log.level=warn",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        started.append(process)
        url = f"http://127.0.0.1:{port}"

        def ready() -> bool:
            assert process.poll() is None, "alertmanager exited"
            try:
                with urllib.request.urlopen(f"{url}/-/ready", timeout=5) as response:
                    return response.status == 200
            except OSError:
                return False

        wait_for(ready, timeout=60, what="alertmanager ready")
        return url

    yield start
    for process in started:
        process.terminate()
        process.wait(timeout=30)


def call(url: str, body: object | None = None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read() or b"null")


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
    env |= {"SLACK_WEBHOOK_URL": f"{nowhere}/slack", "WATCHDOG_WEBHOOK_URL": f"{nowhere}/w"}
    rendered = tmp_path / "alertmanager.yml"
    rendered.write_text(config_render(config, env))
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
