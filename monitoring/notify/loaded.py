"""The notifier's configuration file as the monitor runs it: loaded once, read by the pipeline
and by the Alertmanager API alike.

`LoadedConfig(path).load()` reads the file; when it loads, `config` and `text` switch to it,
when it does not, they stay what they were (the last good configuration, or None before any)
and `errors` says why. `errors` is always the last attempt's, as Alertmanager's
`alertmanager_config_last_reload_successful`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from monitoring.configfile import ConfigError
from monitoring.notify.config import Config, config_load

__all__ = ["LoadedConfig"]

logger = logging.getLogger(__name__)

DEFAULT_RESOLVE_TIMEOUT_MS = 300_000


@dataclass
class LoadedConfig:
    path: Path | None
    env: Mapping[str, str] | None = None  # None: os.environ
    config: Config | None = None  # the running configuration: the last one that loaded
    text: str = ""  # its file as loaded (/api/v2/status' config.original)
    errors: list[str] = field(default_factory=list)  # the last attempt's problems
    success_time: float | None = None  # unix seconds of the last load that switched

    def load(self) -> list[str]:
        """Read the file again; switch to it when it loads. Returns its problems."""
        if self.path is None:
            return []
        try:
            text = Path(self.path).read_text()
            config = config_load(self.path, env=self.env, text=text)
        except OSError as exc:
            self.errors = [f"{self.path}: {exc.strerror or exc}"]
        except ConfigError as exc:
            self.errors = list(exc.errors)
        else:
            self.config, self.text, self.errors = config, text, []
            self.success_time = time.time()
            return []
        logger.error(
            "notifier configuration %s does not load; %s: %s",
            self.path,
            "no notifications are sent"
            if self.config is None
            else "keeping the running configuration",
            "; ".join(self.errors),
            extra={"config_errors": self.errors},
        )
        return self.errors

    @property
    def resolve_timeout_ms(self) -> int:
        return self.config.global_.resolve_timeout_ms if self.config else DEFAULT_RESOLVE_TIMEOUT_MS
