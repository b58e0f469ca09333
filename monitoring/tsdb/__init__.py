"""The monitor's time-series store: samples in memory, persisted on local disk.

The bottom layer: it imports nothing from ``monitoring.rules`` or ``monitoring.monitor``.
``store`` holds label sets, matchers, staleness markers and the in-memory ``SampleStore``.
"""
