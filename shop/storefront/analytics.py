"""Third-party analytics (Google Analytics, Mixpanel, Hotjar): which snippets a page includes.

None unless its id is set; with ANALYTICS_CONSENT=required (the default) none until the visitor
accepts (the `analytics_consent` cookie, set by the consent form). Ids are checked against
their vendor's shape, so a setting can never inject markup into every page.
"""

from __future__ import annotations

import re

from django.conf import settings
from django.http import HttpRequest

CONSENT_COOKIE = "analytics_consent"
_SHAPES = {
    "ga": ("GA_MEASUREMENT_ID", re.compile(r"G-[A-Z0-9]{4,20}\Z")),
    "mixpanel": ("MIXPANEL_TOKEN", re.compile(r"[a-f0-9]{32}\Z")),
    "hotjar": ("HOTJAR_SITE_ID", re.compile(r"[0-9]{1,12}\Z")),
}


def analytics_ids() -> dict[str, str]:
    """The vendors configured with a well-formed id (a malformed one is left out)."""
    out = {}
    for vendor, (setting, shape) in _SHAPES.items():
        value = getattr(settings, setting, "") or ""
        if shape.match(value):
            out[vendor] = value
    return out


def analytics_context(request: HttpRequest) -> dict:
    """What base.html needs: the snippets to include, and whether to ask for consent."""
    ids = analytics_ids()
    if not ids:
        return {"analytics": {}, "consent_needed": False}
    consent = request.COOKIES.get(CONSENT_COOKIE, "")
    granted = settings.ANALYTICS_CONSENT == "granted" or consent == "yes"
    return {
        "analytics": ids if granted else {},
        "consent_needed": not granted and consent != "no",
    }
