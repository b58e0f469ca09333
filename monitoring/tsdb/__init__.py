"""The monitor's time-series store: samples in memory, persisted on local disk.

The bottom layer: it imports nothing from ``monitoring.rules`` or ``monitoring.monitor``.

- ``store``: label sets, matchers, staleness markers and the in-memory ``SampleStore``.
- ``disk``: ``open_store(directory, retention_seconds)``, a ``SampleStore`` that logs every
  write and reloads it on open (``DiskStore``); layout and recovery in its docstring.
- ``wal``: write-ahead log segments; ``block``: compacted block files; ``encoding``: the
  frames, label tables and columns both are made of.
"""
