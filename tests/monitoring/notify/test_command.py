"""`manage.py monitor routes`, `check-config` (alertmanager.yml too) and `render-alertmanager`."""

import stat
import subprocess
from pathlib import Path

from tests.monitoring.command import monitor_command
from tests.services import require_alertmanager

HERE = Path(__file__).parent
TANGLED = HERE / "tangled.yml"


def monitor(*args: str) -> tuple[int, str, str]:
    result = monitor_command(*args)
    return result.returncode, result.stdout, result.stderr


def test_routes_prints_what_amtool_prints() -> None:
    require_alertmanager()
    for labels in (
        ["severity=critical", "team=devops", "service=db"],
        ["env=staging", 'team="dev ops"'],
        ["alertname=Watchdog"],
        [],
    ):
        code, out, _ = monitor("routes", "--config", str(TANGLED), *labels)
        amtool = subprocess.run(
            ["amtool", "config", "routes", "test", f"--config.file={TANGLED}", "--", *labels],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert code == 0 and out.splitlines()[0] == amtool.stdout.strip()


def test_routes_verify_and_verbose() -> None:
    code, out, _ = monitor(
        "routes", "severity=critical", "team=development", "--verify-receivers",
        "dashboard,slack-critical,oncall,email-development", "-v",
    )  # fmt: skip
    assert code == 0
    assert '  email-development: matchers={}/{team="development"}/{severity="critical"}' in out
    assert "group_wait=0s" in out
    code, out, _ = monitor("routes", "severity=warning", "--verify-receivers", "dashboard")
    assert code == 1 and "did not match" in out
    code, _, err = monitor("routes", "severity!=warning")
    assert code == 2 and "key=value" in err


def test_check_config_checks_alertmanager_yml(tmp_path: Path) -> None:
    code, out, _ = monitor("check-config")
    assert code == 0 and "alertmanager.yml: OK" in out
    bad = tmp_path / "am.yml"
    bad.write_text("route: {receiver: nobody}\nreceivers: [{name: r, sns_configs: []}]\n")
    code, out, err = monitor("check-config", "--alertmanager", str(bad))
    assert code == 1 and "prometheus.yml: OK" in out
    assert err.splitlines() == [
        f"{bad}:1: undefined receiver 'nobody' used in route",
        f"{bad}:2: receivers[0]: field 'sns_configs' is not supported by the notifier",
    ]


def test_render_alertmanager_writes_a_private_copy(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("SLACK_WEBHOOK_URL", "https://hooks.slack.com/services/T/B/secret")
    monkeypatch.setenv("MONITORING_TOKEN", "app-token")
    out_path = tmp_path / "rendered" / "alertmanager.yml"
    code, out, _ = monitor("render-alertmanager", "--out", str(out_path))
    assert code == 0 and str(out_path) in out
    assert stat.S_IMODE(out_path.stat().st_mode) == 0o600
    assert "hooks.slack.com/services/T/B/secret" in out_path.read_text()


def test_render_alertmanager_over_an_older_copy_makes_it_private(
    tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setenv("MONITORING_TOKEN", "app-token")
    out_path = tmp_path / "alertmanager.yml"
    out_path.write_text("an older, world-readable copy\n")
    out_path.chmod(0o644)
    code, _, err = monitor("render-alertmanager", "--out", str(out_path))
    assert code == 0, err
    assert stat.S_IMODE(out_path.stat().st_mode) == 0o600
    assert "route:" in out_path.read_text()
    assert [p.name for p in tmp_path.iterdir()] == ["alertmanager.yml"]  # no temporary left


def test_render_alertmanager_refuses_webhooks_to_the_app_without_the_token(
    tmp_path: Path, monkeypatch
) -> None:
    """The app answers 401 without it, and Alertmanager does not retry a 4xx: SMS and the
    dashboard would be dropped. The embedded notifier needs no token (test_config)."""
    monkeypatch.delenv("MONITORING_TOKEN", raising=False)
    out_path = tmp_path / "alertmanager.yml"
    code, _, err = monitor("render-alertmanager", "--out", str(out_path))
    assert code == 1 and not out_path.exists()
    shipped = HERE.parents[2] / "deploy/alertmanager/alertmanager.yml"
    lines = err.strip().splitlines()
    assert len(lines) == 2  # the oncall (SMS) and dashboard webhooks
    for line in lines:
        assert line.startswith(f"{shipped}:") and "set MONITORING_TOKEN" in line, line


def test_render_alertmanager_warns_about_placeholders_left(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("MONITORING_TOKEN", "app-token")
    monkeypatch.delenv("SLACK_WEBHOOK_URL", raising=False)
    monkeypatch.setenv("WATCHDOG_WEBHOOK_URL", "https://deadman.example.com/ping")
    code, _, err = monitor("render-alertmanager", "--out", str(tmp_path / "am.yml"))
    assert code == 0
    assert err.splitlines() == [
        "warning: SLACK_WEBHOOK_URL is not set: its endpoint keeps the placeholder"
    ]
