"""Every shipped alert links a runbook that exists and says what an operator needs."""

import re
from pathlib import Path

import pytest
import yaml

from monitoring.notify.pipeline import CHANNEL_DOWN

REPO = Path(__file__).resolve().parents[3]
RULE_FILES = sorted((REPO / "deploy/prometheus").glob("*_rules.yml"))
SECTIONS = ("what it means", "first checks", "likely causes", "fixes", "escalate")


def _alerts() -> list[tuple[str, str, dict]]:
    found = []
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                if "alert" in rule:
                    found.append((path.name, rule["alert"], rule.get("annotations") or {}))
    return found


ALERTS = _alerts()


def test_the_shipped_alerts_are_found():
    names = {name for _, name, _ in ALERTS}
    assert {"HighCpuUsage", "HighPaymentFailureRate", "TargetDown", "Watchdog"} <= names
    assert len(names) == len(ALERTS) >= 29


@pytest.mark.parametrize(("file", "alert", "annotations"), ALERTS, ids=[a[1] for a in ALERTS])
def test_every_alert_links_its_runbook(file, alert, annotations):
    assert annotations.get("runbook_url") == f"docs/runbooks/{alert}.md", file
    page = REPO / annotations["runbook_url"]
    assert page.is_file(), f"{file}: {alert} has no runbook at {page}"
    text = page.read_text()
    assert text.startswith(f"# {alert}\n")
    headings = [h.lower() for h in re.findall(r"^## (.+)$", text, flags=re.M)]
    for section in SECTIONS:
        assert any(section in h for h in headings), f"{page.name} lacks '{section}'"
    assert "`" in text  # concrete commands, queries or endpoints, not prose only


def test_the_index_links_every_page_and_no_page_is_orphaned():
    index = (REPO / "docs/runbooks/README.md").read_text()
    pages = {p.stem for p in (REPO / "docs/runbooks").glob("*.md")} - {"README"}
    # NotificationChannelDown is raised by the notifier itself, not by a rule.
    assert pages == {name for _, name, _ in ALERTS} | {CHANNEL_DOWN}
    for page in pages:
        assert f"]({page}.md)" in index
