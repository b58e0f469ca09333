"""Synthetic checks: HTTP probes of the shop from the monitor (docs/synthetic.md).

- ``checks_load(path, base_url=...)``: the checks file, validated (ConfigError: file:line).
- ``Prober(store, checks)``: runs them, each on its own interval, into the monitor's store
  under blackbox_exporter's series names.
"""

from monitoring.synthetic.config import CheckConfig, checks_load
from monitoring.synthetic.probe import ProbeResult, probe_once
from monitoring.synthetic.prober import JOB, CheckState, Prober, state_next

__all__ = [
    "JOB",
    "CheckConfig",
    "CheckState",
    "ProbeResult",
    "Prober",
    "checks_load",
    "probe_once",
    "state_next",
]
