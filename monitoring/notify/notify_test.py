"""`manage.py monitor notify-test RECEIVER`: a test notification through every integration of
one receiver of the notifier configuration, each sent once (no retries), each outcome told.

The notification is `content.test_notification`: a firing `NotificationTest` alert (severity
info) that says it is a test. Returns the exit code: 0 when every integration delivered, 1 when
any failed, 2 when the configuration does not load or names no such receiver.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path

from monitoring.configfile import ConfigError
from monitoring.monitor.state import StateStore
from monitoring.notify.config import Config, config_load
from monitoring.notify.content import test_notification
from monitoring.notify.integrations import Integration, integrations_build, integrations_close
from monitoring.notify.notification import Delivery, Notification

__all__ = ["receiver_test"]

Write = Callable[[str], object]


def _state(config: Config, env: Mapping[str, str]) -> StateStore | None:
    """The monitor's state file, for a receiver with a dashboard integration only."""
    receiver = next(iter(config.receivers.values()))
    if not any(c.channel == "dashboard" for c in receiver.webhook_configs):
        return None
    from monitoring.monitor.config import settings_from_env

    return StateStore(settings_from_env(env).state_path)


def _send(integration: Integration, notification: Notification) -> Delivery:
    if integration.channel is None:
        return Delivery.permanent(integration.problem or "no channel")
    try:
        return integration.channel.send(notification)
    except Exception as exc:  # a channel bug must not hide the other integrations' outcome
        return Delivery.permanent(f"{type(exc).__name__}: {exc}")


def receiver_test(
    path: Path, name: str, *, out: Write, err: Write, env: Mapping[str, str] | None = None
) -> int:
    env = os.environ if env is None else env
    try:
        config = config_load(path, env=env)
    except ConfigError as exc:
        for line in exc.errors:
            err(line)
        return 2
    if name not in config.receivers:
        err(
            f"notify-test: no receiver {name!r} in {path}; its receivers: {', '.join(config.receivers)}"
        )
        return 2
    # Only this receiver's channels are built (another's missing SMS settings do not matter).
    config = replace(config, receivers={name: config.receivers[name]})
    state = _state(config, env)
    integrations = integrations_build(config, state=state, env=env)[name]
    notification = test_notification(
        name,
        external_url=env.get("NOTIFY_EXTERNAL_URL", ""),
        dashboard_url=env.get("NOTIFY_DASHBOARD_URL", ""),
        runbook_base_url=env.get("RUNBOOK_BASE_URL", ""),
    )
    failed = 0
    try:
        if not integrations:
            err(f"notify-test {name}: the receiver has no integrations; nothing to send")
            return 1
        for integration in integrations:
            delivery = _send(integration, notification)
            what = f"notify-test {name} {integration.name} ({integration.kind})"
            if delivery.delivered:
                out(f"{what}: delivered (idempotency key {notification.idempotency_key})")
            else:
                failed += 1
                err(f"{what}: failed ({delivery.outcome}): {delivery.reason}")
    finally:
        integrations_close({name: integrations})
        if state is not None:
            state.close()
    return 1 if failed else 0
