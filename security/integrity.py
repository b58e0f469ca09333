"""File integrity: a baseline of SHA-256 hashes of the critical files (SECURITY_INTEGRITY_PATHS,
globs under BASE_DIR), checked every SECURITY_INTEGRITY_SECONDS (Celery beat, or
beat_inprocess). The check writes file_check.json beside the baseline, which the scrape reads
(`security_file_integrity_changed{path,change}`): a change raises FileIntegrityChanged
(critical) listing the files until an operator re-baselines (`manage.py security baseline`,
logged and recorded as an event). No baseline yet: the first check takes one, also recorded.
"""

from __future__ import annotations

import glob
import hashlib
import json
import logging
import os
import time
from pathlib import Path

from django.conf import settings

from security import events

logger = logging.getLogger("security")


def _files() -> list[Path]:
    """The files the patterns name: relative ones under BASE_DIR, absolute ones as they are."""
    root = Path(settings.BASE_DIR)
    found: set[Path] = set()
    for pattern in settings.SECURITY_INTEGRITY_PATHS:
        paths = (
            (Path(p) for p in glob.glob(pattern, recursive=True))
            if os.path.isabs(pattern)
            else root.glob(pattern)
        )
        found.update(p for p in paths if p.is_file() and "__pycache__" not in p.parts)
    return sorted(found)


def _name(path: Path, root: Path) -> str:
    return str(path.relative_to(root)) if path.is_relative_to(root) else str(path)


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 16), b""):
            h.update(chunk)
    return h.hexdigest()


def snapshot() -> dict[str, str]:
    root = Path(settings.BASE_DIR)
    return {_name(p, root): _digest(p) for p in _files()}


def _state_dir() -> Path:
    path = Path(settings.SECURITY_INTEGRITY_DIR)
    path.mkdir(parents=True, exist_ok=True)
    return path


def _write(path: Path, data: dict) -> None:
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(data, indent=1, sort_keys=True))
    os.replace(temporary, path)  # a reader sees the old file or the new one, never half


def baseline(*, actor: str, reason: str = "") -> int:
    """Hash the critical files now as the accepted state; returns how many."""
    files = snapshot()
    _write(_state_dir() / "file_baseline.json", {"at": time.time(), "by": actor, "files": files})
    _write(
        _state_dir() / "file_check.json",
        {"checked_at": time.time(), "files": len(files), "changes": []},
    )
    logger.warning("file integrity baseline taken by %s: %d files (%s)", actor, len(files), reason)
    events.record(
        "file_integrity_baselined", actor=actor, detail={"files": len(files), "reason": reason}
    )
    return len(files)


def check() -> list[dict]:
    """Compare the critical files with the baseline; returns the changes (and records them)."""
    path = _state_dir() / "file_baseline.json"
    if not path.exists():
        baseline(actor="system:first-check", reason="no baseline yet")
        return []
    expected = json.loads(path.read_text())["files"]
    now = snapshot()
    changes = [
        {"path": name, "change": "modified" if name in now else "missing"}
        for name, digest in expected.items()
        if now.get(name) != digest
    ] + [{"path": name, "change": "added"} for name in now.keys() - expected.keys()]
    changes.sort(key=lambda c: c["path"])
    previous = _previous_changes()
    _write(
        _state_dir() / "file_check.json",
        {"checked_at": time.time(), "files": len(expected), "changes": changes},
    )
    if changes and changes != previous:  # an event per new finding, not per check
        events.record(
            "file_integrity_changed",
            detail={"changes": changes[:50], "count": len(changes)},
        )
    return changes


def _previous_changes() -> list[dict]:
    try:
        return json.loads((_state_dir() / "file_check.json").read_text())["changes"]
    except (OSError, ValueError, KeyError):
        return []
