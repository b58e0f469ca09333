"""A notifier in its own process, for the kill drills: `python -m … STATE CONFIG [--put]`.

Starts a Notifier on the state file with the configuration, hands it one critical alert when
`--put` is given (as the monitor does after every evaluation), prints "ready" and runs until
killed."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from monitoring.monitor.state import StateStore
from monitoring.notify.config import config_load
from monitoring.notify.pipeline import Notifier
from tests.monitoring.notify.pipeline_helpers import alert


def main() -> None:
    state_path, config_path, *flags = sys.argv[1:]
    state = StateStore(state_path)
    notifier = Notifier(
        config_load(config_path, env={}, text=Path(config_path).read_text()),
        state=state,
        clock=lambda: round(time.time() * 1000),
        env={},
    )
    notifier.start()
    if "--put" in flags:
        notifier.put([alert(severity="critical", starts_at_ms=1_796_421_600_000)])
    print("ready", flush=True)
    while True:
        time.sleep(1)


if __name__ == "__main__":
    main()
