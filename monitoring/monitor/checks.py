"""`monitor check-config`: every configuration file validated, every problem as file:line."""

from __future__ import annotations

from pathlib import Path

import yaml

from monitoring.configfile import ConfigError
from monitoring.monitor.config import MonitorConfig, config_load, rule_files_resolve
from monitoring.monitor.thresholds import rules_stale
from monitoring.thresholds import thresholds_load


def config_check(*, config_path: Path, thresholds_path: Path | None = None) -> list[str]:
    """All problems found in prometheus.yml, its rule files and thresholds.yml (empty: valid)."""
    errors: list[str] = []
    config: MonitorConfig | None = None
    try:
        config = config_load(config_path)
    except ConfigError as exc:
        errors.extend(exc.errors)
    thresholds_path = thresholds_path or config_path.parent / "thresholds.yml"
    try:
        thresholds_load(thresholds_path)
    except ConfigError as exc:
        errors.extend(exc.errors)
    else:
        if (thresholds_path.parent / "templates").is_dir():
            try:
                stale = rules_stale(
                    prometheus_dir=thresholds_path.parent, thresholds_path=thresholds_path
                )
            except ConfigError as exc:
                errors.extend(exc.errors)
            else:
                errors.extend(
                    f"{path}:1: out of date with thresholds.yml; run `manage.py monitor render-rules`"
                    for path in stale
                )
    rule_files = config.rule_files if config is not None else _rule_files_anyway(config_path)
    errors.extend(rule_files_check(rule_files))
    return errors


def _rule_files_anyway(config_path: Path) -> list[Path]:
    """The rule files of a configuration that failed validation, to check them too."""
    try:
        patterns = yaml.safe_load(config_path.read_text()).get("rule_files") or []
    except (OSError, yaml.YAMLError, AttributeError):
        return []
    if not isinstance(patterns, list):
        return []
    return rule_files_resolve(config_path.parent, [p for p in patterns if isinstance(p, str)])


def rule_files_check(paths: tuple[Path, ...] | list[Path]) -> list[str]:
    from monitoring.rules.loader import check_rule_files

    return check_rule_files(paths)
