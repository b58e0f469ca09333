"""What every stage is given besides the alerts: the group, the receiver, the time."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from monitoring.monitor.state import LogEntry, OutboxWrite
from monitoring.notify.notification import NotifiedAlert
from monitoring.notify.routing import Route


@dataclass
class FlushContext:
    now_ms: int
    route: Route
    receiver: str
    group_key: str
    group_labels: Mapping[str, str]
    # Every firing alert the notifier holds (not only this group's): inhibition's sources.
    firing_labels: list[Mapping[str, str]] = field(default_factory=list)
    # The group's alerts before any was muted: the dedup stage keeps a silenced alert that
    # was told firing in the log, so its resolution is still told.
    group_alerts: tuple[NotifiedAlert, ...] = ()
    # Set by the dedup stage for the outbox stage: the log entry to write with the rows.
    log_entry: LogEntry | None = None
    # Given by a flush that writes its chunk's groups together: the outbox stage adds its
    # write here instead of writing it (None: the stage writes it at once).
    outbox_writes: list[OutboxWrite] | None = None


class Stage(Protocol):
    def run(self, ctx: FlushContext, alerts: list[NotifiedAlert]) -> list[NotifiedAlert]: ...
