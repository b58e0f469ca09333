"""`maintenance_mode` (0/1), read from the flag file at collect time (maintenance.mode).

Every process reads the same file, so under gunicorn's multiprocess mode the value is the same
whichever worker answers the scrape; nothing is written to the metric files.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily, Metric

from maintenance.mode import current


class MaintenanceModeCollector:
    def describe(self) -> list[Metric]:
        return []  # read at scrape time only

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(
            "maintenance_mode",
            "1 while the shop answers customers 503 for maintenance (manage.py maintenance_mode).",
            value=1 if current().enabled else 0,
        )
