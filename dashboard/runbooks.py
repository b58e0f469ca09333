"""Runbooks: the alerts' `runbook_url` annotations point at docs/runbooks/<AlertName>.md in
the repository; the dashboard serves those files to staff, so the link works from a phone."""

from __future__ import annotations

import re

from django.conf import settings

__all__ = ["runbook_text"]

_NAME = re.compile(r"^[A-Za-z0-9_-]{1,100}$")


def runbook_text(name: str) -> str | None:
    if not _NAME.match(name):
        return None
    path = settings.BASE_DIR / "docs" / "runbooks" / f"{name}.md"
    try:
        return path.read_text(encoding="utf-8")
    except (FileNotFoundError, IsADirectoryError):
        return None
