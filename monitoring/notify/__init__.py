"""The notifier: Alertmanager 0.25's configuration format and routing, held to `amtool`.

The public surface (everything else is internal):

config       `config_load(path, *, env=None) -> Config` (raises `monitoring.configfile.ConfigError`, every problem
             as `file:line: problem`; `env` defaults to os.environ). `Config` holds `global_`, `route` (a `RouteConfig` tree as
             written), `receivers` (name → `Receiver` with `email_configs`, `slack_configs`,
             `webhook_configs`; `WebhookConfig.channel` is "sms"/"dashboard" for our channels),
             `inhibit_rules`, `time_intervals` (name → `TimeInterval`s) and `templates`.
matchers     `parse_matchers(text)`, `parse_labels(args)`, `Matcher`, `Matchers` (`=`, `!=`,
             `=~`, `!~`, anchored regexes, a missing label is "").
routing      `Route.build(config.route)`; `route.match(labels) -> [Route]` (tree order, as
             dispatch/route.go), `route.receivers(labels)`, `route.group_key(labels)`,
             `route.options` (receiver, group_by/group_by_all, the three timers, mute/active
             intervals); `route_is_muted(route, when, config.time_intervals)`;
             `Inhibitor(config.inhibit_rules).index(firing).inhibited_by(labels)` (one index
             a cycle; `is_inhibited(labels, firing)` for a single check).
timeintervals `TimeInterval.contains(datetime)`.
environment  `config_render(path, env=None) -> str`: the file with the environment applied,
             the copy real Alertmanager reads.

notification `Notification` (what a channel is given, with its idempotency key), `Delivery`.
content      what every message says (title, facts, links), one place for all channels.
channels     `channels/<kind>.py`, one small class per channel with `send(notification) ->
             Delivery` and no retries inside (docs/notify-channels.md).

silences    `Silences(store, clock=…)`: `set`, `expire`, `get`, `query(filters)`, `gc()`,
             `is_silenced(labels, now_ms) -> [ids]`, `mutes(labels, now_ms)` (the pipeline's
             Muter); `Silence`, `SilenceError`, `SilenceNotFound`.
received     `ReceivedAlerts.parse(documents, …)`: alerts POSTed to /api/v2/alerts, validated
             and counted; `ReceivedAlert.notified(now_ms)` is what the pipeline takes.
loaded       `LoadedConfig(path).load()`: NOTIFY_CONFIG as running (config, text, the last
             attempt's errors; a bad reload keeps the last good one), the one load the
             pipeline and /api/v2 share.
state        `NotifierState(silences, config)`: what /api/v2 reads besides the pipeline.
pipeline    `Notifier(config or None, state=, clock=, muter=)`: `put(alerts)` (the monitor's
            after each evaluation, via `notified_alerts`, and received ones), `flush_due()`,
            `start()`/`stop()`, `firing()`/`groups()` (what /api/v2 shows), `metrics`,
            `alert_counts()`; the stages in `stages/` (`Muter` is where silences plug in),
            the delivery worker in `outbox.py` (docs/notify.md "Pipeline", "Outbox").
notify_test  `receiver_test(path, name, out=, err=)`: `monitor notify-test RECEIVER`.
docs/notify.md describes the format, the environment and how routing is held to amtool.
"""

from monitoring.notify.config import Config, config_load
from monitoring.notify.environment import config_render
from monitoring.notify.matchers import Matcher, Matchers, parse_labels, parse_matchers
from monitoring.notify.routing import Inhibitor, Route, route_is_muted
from monitoring.notify.timeintervals import TimeInterval

__all__ = [
    "Config",
    "Inhibitor",
    "Matcher",
    "Matchers",
    "Route",
    "TimeInterval",
    "config_load",
    "config_render",
    "parse_labels",
    "parse_matchers",
    "route_is_muted",
]
