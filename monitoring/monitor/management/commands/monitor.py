"""`manage.py monitor <subcommand>`: the embedded Prometheus-compatible monitor and its tools.

run            the long-running process: scrape, evaluate, serve the API (SIGHUP reloads)
once           one scrape-and-evaluate cycle; prints what would fire
check-config   validate prometheus.yml, its rule files and thresholds.yml (exit 1 on error)
test-rules     run promtool-format rule unit tests (same as `promtool test rules`)
render-rules   regenerate the rule files from templates/ and thresholds.yml
"""

from __future__ import annotations

import sys
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from monitoring.monitor.thresholds import ConfigError, rules_render


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="subcommand", required=True)
        render = sub.add_parser("render-rules")
        render.add_argument(
            "--dir",
            default=str(settings.MONITORING_CONFIG_DIR),
            help="directory holding thresholds.yml and templates/",
        )
        render.add_argument("--check", action="store_true", help="only report stale files")

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
