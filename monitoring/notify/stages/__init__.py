"""The notification pipeline's stages, one small class each (Alertmanager's notify.go shape).

A stage has one method, `run(ctx, alerts) -> alerts`: the alerts of one aggregation group
for one receiver in, the ones to pass on out. `ctx` (`FlushContext`) says which group, which
receiver and when (the clock is passed in, never read). The chain is built in one place,
`monitoring.notify.pipeline.stages_build`.
"""

from monitoring.notify.stages.context import FlushContext, Stage
from monitoring.notify.stages.dedup import DedupStage, needs_update
from monitoring.notify.stages.enqueue import OutboxStage
from monitoring.notify.stages.group import AggregationGroup
from monitoring.notify.stages.mute import (
    NO_SILENCES,
    InhibitStage,
    Muter,
    SilenceStage,
    TimeMuteStage,
)

__all__ = [
    "NO_SILENCES",
    "AggregationGroup",
    "DedupStage",
    "FlushContext",
    "InhibitStage",
    "Muter",
    "OutboxStage",
    "SilenceStage",
    "Stage",
    "TimeMuteStage",
    "needs_update",
]
