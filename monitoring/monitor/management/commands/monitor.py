"""`manage.py monitor <subcommand>`: the embedded Prometheus-compatible monitor and its tools.

run            the long-running process: scrape, evaluate, serve the API (SIGHUP reloads)
once           one scrape-and-evaluate cycle; prints what would fire
check-config   validate prometheus.yml, its rule files, thresholds.yml and alertmanager.yml
test-rules     run promtool-format rule unit tests (same as `promtool test rules`)
render-rules   regenerate the rule files from templates/ and thresholds.yml
notify-test    send a test notification through every integration of a receiver of the
               notifier configuration; `--channel KIND` through one channel configured from the
               environment (docs/notify-channels.md)
routes         the receivers an alert with LABEL=VALUE… reaches (`amtool config routes test`)
render-alertmanager  alertmanager.yml with the environment applied, for real Alertmanager
"""

from __future__ import annotations

import gc
import logging
import os
import signal
import sys
import tempfile
import threading
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from monitoring.configfile import ConfigError
from monitoring.monitor.api import api_server_start
from monitoring.monitor.checks import config_check
from monitoring.monitor.config import settings_from_env
from monitoring.monitor.runtime import Monitor
from monitoring.monitor.thresholds import rules_render
from monitoring.notify.config import config_load as notify_config_load
from monitoring.notify.routing import route_describe
from monitoring.tsdb.disk import StoreLockedError


def notify_config_errors(path: Path) -> list[str]:
    try:
        notify_config_load(path)
    except ConfigError as exc:
        return exc.errors
    return []


def escalation_config_errors(alertmanager: Path) -> tuple[Path | None, list[str]]:
    """The escalation policies beside `alertmanager` (or ESCALATION_CONFIG), checked against
    its receivers: (the file, or None when there is none; its problems)."""
    from monitoring.escalation.policy import escalation_file, policies_load

    path = escalation_file(alertmanager)
    if path is None:
        return None, []
    try:
        receivers = list(notify_config_load(alertmanager).receivers)
    except ConfigError:
        receivers = None  # reported above; check the policies on their own
    try:
        policies_load(path, known_receivers=receivers)
    except ConfigError as exc:
        return path, exc.errors
    return path, []


logger = logging.getLogger("monitoring.monitor")


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="subcommand", required=True)
        default_config = str(Path(settings.MONITORING_CONFIG_DIR) / "prometheus.yml")
        for name in ("run", "once", "check-config"):
            p = sub.add_parser(name)
            p.add_argument("--config", default=default_config, help="prometheus.yml to read")
            if name == "check-config":
                p.add_argument("--thresholds", help="thresholds.yml (default: beside --config)")
                p.add_argument("--alertmanager", default=str(settings.NOTIFY_CONFIG))
        routes = sub.add_parser("routes")
        routes.add_argument("labels", nargs="*", help="the alert's labels, LABEL=VALUE")
        routes.add_argument("--config", default=str(settings.NOTIFY_CONFIG))
        routes.add_argument(
            "--verify-receivers", help="exit 1 unless the receivers are these (comma-separated)"
        )
        routes.add_argument("--verbose", "-v", action="store_true", help="each route's options")
        render_am = sub.add_parser("render-alertmanager")
        render_am.add_argument("--config", default=str(settings.NOTIFY_CONFIG))
        render_am.add_argument("--out", default=str(Path(settings.VAR_DIR) / "alertmanager.yml"))
        render = sub.add_parser("render-rules")
        render.add_argument(
            "--dir",
            default=str(settings.MONITORING_CONFIG_DIR),
            help="directory holding thresholds.yml and templates/",
        )
        render.add_argument("--check", action="store_true", help="only report stale files")
        notify = sub.add_parser("notify-test")
        notify.add_argument(
            "receiver", nargs="?", help="a receiver of the notifier configuration (--config)"
        )
        notify.add_argument("--config", default=str(settings.NOTIFY_CONFIG))
        notify.add_argument(
            "--channel",
            help="instead of a receiver: one channel (email, slack, sms, webhook or dashboard)"
            " configured from the environment",
        )
        notify.add_argument(
            "--to",
            action="append",
            help="with --channel: recipient instead of the configured one (address, number,"
            " webhook URL); repeatable",
        )
        ack = sub.add_parser("ack", help="acknowledge firing alerts (stops their escalation)")
        ack.add_argument("alerts", nargs="*", help="fingerprints (16 hex digits) or alert names")
        ack.add_argument("--by", default=os.environ.get("USER", ""), help="who (default: $USER)")
        ack.add_argument("--comment", default="")
        ack.add_argument("--list", action="store_true", help="list the acknowledgements")
        tests = sub.add_parser("test-rules")
        tests.add_argument("files", nargs="+", help="rule unit-test files in promtool's format")

    def handle(self, *args, subcommand: str, **options) -> None:
        handler = getattr(self, "handle_" + subcommand.replace("-", "_"))
        code = handler(**options)
        if code:
            sys.exit(code)

    def handle_render_rules(self, *, dir: str, check: bool, **_) -> int:
        from monitoring.monitor.thresholds import rules_stale

        try:
            if check:
                stale = rules_stale(prometheus_dir=Path(dir))
                for path in stale:
                    self.stderr.write(f"{path}: out of date; run `manage.py monitor render-rules`")
                return 1 if stale else 0
            for path in rules_render(prometheus_dir=Path(dir)):
                self.stdout.write(f"wrote {path}")
        except ConfigError as exc:
            for line in exc.errors:
                self.stderr.write(line)
            return 1
        return 0

    def handle_check_config(
        self, *, config: str, thresholds: str | None, alertmanager: str, **_
    ) -> int:
        errors = config_check(
            config_path=Path(config), thresholds_path=Path(thresholds) if thresholds else None
        )
        notify_errors = notify_config_errors(Path(alertmanager))
        escalation, escalation_errors = escalation_config_errors(Path(alertmanager))
        for line in errors + notify_errors + escalation_errors:
            self.stderr.write(line)
        if not errors:
            self.stdout.write(f"{config}: OK")
        if not notify_errors:
            self.stdout.write(f"{alertmanager}: OK")
        if escalation is not None and not escalation_errors:
            self.stdout.write(f"{escalation}: OK")
        return 1 if errors or notify_errors or escalation_errors else 0

    def handle_routes(
        self, *, labels: list[str], config: str, verify_receivers: str | None, verbose: bool, **_
    ) -> int:
        from monitoring.notify.matchers import MatcherError, parse_labels
        from monitoring.notify.routing import Route

        try:
            alert = parse_labels(labels)
            route = Route.build(notify_config_load(Path(config)).route)
        except MatcherError as exc:
            self.stderr.write(f"bad label: {exc}")
            return 2
        except ConfigError as exc:
            for line in exc.errors:
                self.stderr.write(line)
            return 1
        matched = route.match(alert)
        receivers = ",".join(r.options.receiver for r in matched)
        self.stdout.write(receivers)
        if verbose:
            for r in matched:
                self.stdout.write(f"  {r.options.receiver}: {route_describe(r)}")
        if verify_receivers is not None and verify_receivers != receivers:
            self.stdout.write("WARNING: Expected receivers did not match resolved receivers.")
            return 1
        return 0

    def handle_render_alertmanager(self, *, config: str, out: str, **_) -> int:
        from monitoring.notify.environment import config_render, placeholders_left

        try:
            text = config_render(Path(config))
        except ConfigError as exc:
            for line in exc.errors:
                self.stderr.write(line)
            return 1
        target = Path(out)
        target.parent.mkdir(parents=True, exist_ok=True)
        # It may hold the Slack URL and the monitoring token: readable by the owner only, also
        # when it replaces an older copy (whose mode O_CREAT would keep). Written beside and
        # renamed, so a running Alertmanager reloading it never reads half a file.
        fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
        try:
            with os.fdopen(fd, "w") as f:  # mkstemp makes it 0600
                f.write(text)
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        self.stdout.write(f"wrote {target}")
        for variable in placeholders_left(text):
            self.stderr.write(f"warning: {variable} is not set: its endpoint keeps the placeholder")
        return 0

    def handle_notify_test(
        self,
        *,
        receiver: str | None,
        config: str,
        channel: str | None,
        to: list[str] | None,
        **_,
    ) -> int:
        if (receiver is None) == (channel is None):
            self.stderr.write("notify-test: name a RECEIVER, or --channel KIND")
            return 2
        if channel is None:
            from monitoring.notify.notify_test import receiver_test

            if to:
                self.stderr.write("notify-test: --to goes with --channel")
                return 2
            return receiver_test(
                Path(config), receiver, out=self.stdout.write, err=self.stderr.write
            )
        return self._channel_test(channel, to)

    def _channel_test(self, channel: str, to: list[str] | None) -> int:
        from monitoring.notify.channels import ChannelConfigError, channel_from_env
        from monitoring.notify.content import test_notification

        try:
            sender = channel_from_env(channel, to=to)
        except (ChannelConfigError, ValueError) as exc:
            self.stderr.write(f"notify-test {channel}: {exc}")
            return 2
        notification = test_notification(
            f"notify-test-{channel}",
            external_url=os.environ.get("NOTIFY_EXTERNAL_URL", ""),
            dashboard_url=os.environ.get("NOTIFY_DASHBOARD_URL", ""),
            runbook_base_url=os.environ.get("RUNBOOK_BASE_URL", ""),
        )
        try:
            delivery = sender.send(notification)
        finally:
            sender.close()
        if not delivery.delivered:
            self.stderr.write(f"notify-test {channel}: {delivery.outcome}: {delivery.reason}")
            return 1
        self.stdout.write(
            f"notify-test {channel}: delivered (idempotency key {notification.idempotency_key})"
        )
        return 0

    def handle_ack(self, *, alerts: list[str], by: str, comment: str, list: bool, **_) -> int:
        from monitoring.escalation.cli import ack_command

        return ack_command(alerts, by=by, comment=comment, listing=list, out=self.stdout,
                           err=self.stderr)  # fmt: skip

    def handle_test_rules(self, *, files: list[str], **_) -> int:
        from monitoring.rules.unittest import main

        return main(files)

    def _monitor(self, config: str, *, durable: bool = False, **kwargs):
        """The monitor; `durable` keeps its samples in MONITOR_DATA_DIR across restarts.

        A broken prometheus.yml, rule file or thresholds.yml does not stop the monitor (it
        runs on what loads and reports the rest); only unusable MONITOR_* settings do."""
        try:
            settings = settings_from_env()
            data_dir = settings.data_dir if durable else None
            try:
                return Monitor(
                    config_path=Path(config), settings=settings, data_dir=data_dir, **kwargs
                )
            except OSError as exc:  # an unwritable data directory: run, but without history
                logger.error(
                    "cannot open the sample store in %s (%s); keeping samples in memory only",
                    data_dir,
                    exc,
                )
                return Monitor(config_path=Path(config), settings=settings, **kwargs)
        except ConfigError as exc:
            for line in exc.errors:
                self.stderr.write(line)
        except StoreLockedError as exc:
            self.stderr.write(f"MONITOR_DATA_DIR: {exc}")
        return None

    def handle_run(self, *, config: str, **_) -> int:
        monitor = self._monitor(config, durable=True)
        if monitor is None:
            return 1
        settings = monitor.settings
        server = api_server_start(
            monitor, host=settings.listen_host, port=settings.listen_port, token=settings.api_token
        )
        wake = threading.Event()
        pending: list[int] = []

        def on_signal(signum: int, frame) -> None:
            pending.append(signum)
            wake.set()

        for signum in (signal.SIGHUP, signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, on_signal)
        # Django, the parser and the rules stay loaded for good: keep their ~90,000 objects out
        # of the collector's full passes (23 ms each), which a large query's answer can set off.
        gc.collect()
        gc.freeze()
        host, port = server.server_address[:2]
        # The "prometheus" job scrapes the monitor's own /metrics (scrape.with_self_scrape).
        local = "127.0.0.1" if host == "0.0.0.0" else "::1" if host == "::" else host
        monitor.scrape_itself(f"[{local}]:{port}" if ":" in local else f"{local}:{port}")
        monitor.start()
        self.stdout.write(f"monitor API listening on http://{host}:{port}")
        self.stdout.flush()
        try:
            while True:
                wake.wait()
                wake.clear()
                signals = pending[:]
                pending.clear()
                if signal.SIGTERM in signals or signal.SIGINT in signals:
                    logger.info("shutting down")
                    break
                if signal.SIGHUP in signals:
                    monitor.reload()
        finally:
            server.shutdown()
            server.server_close()
            monitor.stop()
        return 0

    def handle_once(self, *, config: str, **_) -> int:
        monitor = self._monitor(config, persist=False)
        if monitor is None:
            return 1
        try:
            alerts = monitor.cycle_once()
        finally:
            monitor.stop()
        for target in monitor.scraper.targets():
            error = f" ({target.last_error})" if target.last_error else ""
            self.stdout.write(f"target {target.url}: {target.health}{error}")
        for line in monitor.config_errors:
            self.stderr.write(line)
        if not alerts:
            self.stdout.write("no alert would fire")
        for alert in alerts:
            labels = dict(alert.labels)
            name = labels.pop("alertname")
            rule = next(r for g in monitor.groups for r in g.alerting_rules() if r.name == name)
            when = (
                "firing"
                if alert.state == "firing"
                else f"pending (fires after for: {rule.for_ms / 1000:g}s)"
            )
            summary = alert.annotations.get("summary", "")
            self.stdout.write(f"{name} {labels} value={alert.value:g} {when} {summary}".rstrip())
        return 1 if monitor.config_errors else 0
