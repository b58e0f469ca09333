"""The maintenance procedures (specification, "Maintenance Procedures") as steps.

`start`: database backup, non-essential services scaled down (Celery workers' consumers
cancelled, beat paused), maintenance mode on, stakeholders notified (an alert
`MaintenanceWindow` through the notifier's routing), a window opened (a silence of the planned
alerts, with author and comment) and documented (state and report).
`end`: services back and verified (workers consuming, beat resumed, the shop's health), smoke
tests over HTTP against the running shop (as staff, so before customers are let in), alerts
checked (no critical alert outside the window), maintenance mode off, the window closed (the
silence expired, stakeholders told), the report written.

Each step is a small function of the procedure `Run`; it returns what it did (one line) or
raises StepFailed. The run stops at the first failure: the state file says which steps were
done, the report lists every step with its result and timing, and the command says what failed.
Every step can be repeated (a rerun does not take a second backup, open a second window or
cancel what is already cancelled), so a failed procedure is rerun once the cause is fixed.
The state (`$VAR_DIR/maintenance/procedure.json`) is how `end` knows what `start` did.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from django.conf import settings

from maintenance import mode, pause, workers
from maintenance.alertmanager import Alertmanager, AlertmanagerError, iso
from maintenance.backup import BackupError, backup_create, backups_prune

# The alerts a maintenance is expected to cause, muted by its window: customers' 503s (error
# rate, response time) and the work piling up while workers take none. Outages (database,
# Redis, a target down) still page: they are not planned.
PLANNED_ALERTS = (
    "HighErrorRate",
    "SlowResponseTime",
    "CeleryQueueBacklog",
    "OutboxBacklog",
    "OutboxJobsDead",
)
NOTICE = "MaintenanceWindow"  # the stakeholders' notice, an info alert (team devops: email)

# Smoke tests: (path, expected status, what the answer must contain); as a staff user, so the
# shop answers as it will to customers once maintenance mode is off.
SMOKE = (
    ("/api/health/", 200, '"status"'),
    ("/api/catalog/categories/", 200, "["),
    ("/api/catalog/products/", 200, "["),
    ("/api/accounts/me/", 200, '"is_staff"'),
    ("/api/schema/", 200, "openapi"),
    ("/api/docs/", 200, "<html"),
    ("/admin/login/", 200, "<form"),
)


class StepFailed(Exception):
    pass


class ProcedureError(Exception):
    """The procedure stopped; the message says at which step, why and what state it left."""


def state_dir() -> Path:
    return Path(settings.VAR_DIR) / "maintenance"


def state_path() -> Path:
    return state_dir() / "procedure.json"


def load_state() -> dict | None:
    try:
        return json.loads(state_path().read_text())
    except FileNotFoundError:
        return None


def _save(state: dict) -> None:
    path = state_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(state, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)


@dataclass
class Options:
    author: str
    reason: str
    shop_url: str
    alertmanager: Alertmanager
    duration: timedelta = timedelta(hours=2)
    retry_after: int = mode.DEFAULT_RETRY_AFTER
    backup_dir: Path | None = None
    staff: str = ""  # username for the smoke tests; "" = the first active superuser
    planned: tuple[str, ...] = PLANNED_ALERTS
    http_timeout: float = 10.0


@dataclass
class Run:
    options: Options
    state: dict
    steps: list[tuple[str, Callable[[Run], str]]] = field(default_factory=list)

    # -- start -------------------------------------------------------------------------------
    def backup(self) -> str:
        taken = self.state.get("backup")
        if taken and Path(taken).is_file():
            return f"already taken: {taken}"
        directory = self.options.backup_dir or Path(settings.BACKUP_DIR)
        try:
            made = backup_create(directory)
        except (BackupError, OSError) as exc:
            raise StepFailed(f"backup failed, no backup kept: {exc}") from exc
        backups_prune(directory, keep=settings.BACKUP_KEEP)
        self.state["backup"] = str(made.path)
        rows = sum(made.tables.values())
        return f"{made.path} verified by restore: {len(made.tables)} tables, {rows} rows"

    def scale_down(self) -> str:
        pause.pause(f"maintenance {self.state['id']}")
        if not workers.broker_present():
            return "beat paused; no Celery workers (no broker: tasks run in-process)"
        try:
            cancelled = workers.scale_down()
        except workers.WorkersError as exc:
            raise StepFailed(str(exc)) from exc
        recorded = self.state.setdefault("workers", {})
        for worker, queues in cancelled.items():  # a rerun finds them cancelled: keep the list
            recorded[worker] = sorted(set(recorded.get(worker, [])) | set(queues))
        if not recorded:
            return "beat paused; no Celery worker online"
        return "beat paused; consumers cancelled: " + _workers_text(recorded)

    def mode_on(self) -> str:
        mode.switch_on(retry_after=self.options.retry_after)
        on = mode.read_now()
        return f"on since {on.since}, Retry-After {on.retry_after} s"

    def notify_start(self) -> str:
        self._notice(ends=_parse(self.state["planned_end"]))
        return (
            f"{NOTICE} sent to {self.options.alertmanager.url} (routed as the configuration says)"
        )

    def window_open(self) -> str:
        am = self.options.alertmanager
        silence_id = self.state.get("silence_id")
        if silence_id:
            found = am.silence(silence_id)
            if found and found["status"]["state"] in ("active", "pending"):
                return f"already open: silence {silence_id}"
        body = {
            "matchers": [
                {
                    "name": "alertname",
                    "value": "|".join(self.options.planned),
                    "isRegex": True,
                    "isEqual": True,
                }
            ],
            "startsAt": iso(datetime.now(UTC)),
            "endsAt": self.state["planned_end"],
            "createdBy": self.options.author,
            "comment": f"maintenance {self.state['id']}: {self.options.reason}",
        }
        self.state["silence_id"] = am.silence_create(body)
        return (
            f"silence {self.state['silence_id']} by {self.options.author} until "
            f"{self.state['planned_end']}: alertname=~{'|'.join(self.options.planned)}"
        )

    def document(self) -> str:
        return f"state {state_path()}, report {report_path(self.state)}"

    # -- end ---------------------------------------------------------------------------------
    def services(self) -> str:
        pause.resume()
        done = ["beat resumed"]
        recorded = self.state.get("workers") or {}
        if recorded:
            try:
                workers.scale_up(recorded)
            except workers.WorkersError as exc:
                raise StepFailed(str(exc)) from exc
            done.append("consuming again: " + _workers_text(recorded))
        health = self._get("/api/health/", staff=False)
        if health.status_code != 200:
            raise StepFailed(f"the shop's health answered {health.status_code}: {health.text}")
        done.append(f"health 200 at {self.options.shop_url}")
        return "; ".join(done)

    def smoke(self) -> str:
        failures, passed = [], []
        for path, status, needle in SMOKE:
            response = self._get(path, staff=True)
            if response.status_code != status or needle not in response.text:
                failures.append(f"{path}: {response.status_code} {response.text[:120]!r}")
            else:
                passed.append(f"{path} {response.status_code}")
        if failures:
            raise StepFailed("smoke tests failed: " + "; ".join(failures))
        return f"{len(passed)} passed: " + ", ".join(passed)

    def alerts_check(self) -> str:
        firing = self.options.alertmanager.alerts(active="true")
        silence_id = self.state.get("silence_id")
        ours = [a for a in firing if silence_id in a["status"]["silencedBy"]]
        others = [a for a in firing if silence_id not in a["status"]["silencedBy"]]
        critical = [
            a["labels"]["alertname"]
            for a in others
            if a["labels"].get("severity") == "critical" and not a["status"]["silencedBy"]
        ]
        names = lambda alerts: sorted({a["labels"]["alertname"] for a in alerts})  # noqa: E731
        if critical:
            raise StepFailed(
                f"critical alerts firing outside the window: {', '.join(sorted(critical))}"
            )
        return f"muted by the window: {names(ours) or 'none'}; other: {names(others) or 'none'}"

    def mode_off(self) -> str:
        mode.switch_off()
        return "off"

    def window_close(self) -> str:
        silence_id = self.state.get("silence_id")
        if not silence_id:
            return "no window was opened"
        self.options.alertmanager.silence_expire(silence_id, by=self.options.author)
        return f"silence {silence_id} expired by {self.options.author}"

    def notify_end(self) -> str:
        told = any(
            s["procedure"] == "start"
            and s["step"] == "stakeholders notified"
            and s["result"] == "ok"
            for s in self.state["steps"]
        )
        if not told:
            return "no notice was sent at start: nothing to resolve"
        self._notice(ends=datetime.now(UTC))
        return f"{NOTICE} resolved at {self.options.alertmanager.url}"

    def report(self) -> str:
        return str(report_path(self.state))

    # -- helpers -----------------------------------------------------------------------------
    def _notice(self, ends: datetime) -> None:
        labels = {
            "alertname": NOTICE,
            "severity": "info",
            "team": "devops",
            "maintenance": self.state["id"],
        }
        summary = f"Maintenance {self.state['id']}: {self.options.reason}"
        description = (
            f"By {self.options.author}, from {self.state['started_at']} until "
            f"{self.state['planned_end']} at the latest. The shop answers 503 (maintenance) "
            f"meanwhile; alerts muted: {', '.join(self.options.planned)}."
        )
        self.options.alertmanager.post_alerts(
            [
                {
                    "labels": labels,
                    "annotations": {"summary": summary, "description": description},
                    "startsAt": self.state["started_at"],
                    "endsAt": iso(ends),
                }
            ]
        )

    def _get(self, path: str, *, staff: bool) -> httpx.Response:
        headers = {"Authorization": f"Token {self._staff_token()}"} if staff else {}
        try:
            return httpx.get(
                self.options.shop_url.rstrip("/") + path,
                headers=headers,
                timeout=self.options.http_timeout,
            )
        except httpx.HTTPError as exc:
            raise StepFailed(
                f"the shop at {self.options.shop_url} does not answer ({path}): "
                f"{exc or type(exc).__name__}"
            ) from exc

    def _staff_token(self) -> str:
        from django.contrib.auth import get_user_model
        from rest_framework.authtoken.models import Token

        users = get_user_model().objects.filter(is_active=True, is_staff=True)
        user = (
            users.filter(username=self.options.staff).first()
            if self.options.staff
            else users.filter(is_superuser=True).order_by("pk").first()
        )
        if user is None:
            raise StepFailed(
                f"no active staff user {self.options.staff!r} for the smoke tests"
                if self.options.staff
                else "no active superuser for the smoke tests: create one (make superuser) "
                "or name a staff user with --staff"
            )
        return Token.objects.get_or_create(user=user)[0].key


START_STEPS: list[tuple[str, Callable[[Run], str]]] = [
    ("database backup", Run.backup),
    ("non-essential services scaled down", Run.scale_down),
    ("maintenance mode on", Run.mode_on),
    ("stakeholders notified", Run.notify_start),
    ("window opened", Run.window_open),
    ("window documented", Run.document),
]
END_STEPS: list[tuple[str, Callable[[Run], str]]] = [
    ("services verified", Run.services),
    ("smoke tests", Run.smoke),
    ("alerts checked", Run.alerts_check),
    ("maintenance mode off", Run.mode_off),
    ("window closed", Run.window_close),
    ("stakeholders notified", Run.notify_end),
    ("report written", Run.report),
]


def _workers_text(recorded: dict[str, list[str]]) -> str:
    return ", ".join(f"{w} ({', '.join(q)})" for w, q in sorted(recorded.items()))


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _now_iso() -> str:
    return iso(datetime.now(UTC))


def report_path(state: dict) -> Path:
    return state_dir() / "reports" / f"maintenance-{state['id']}.md"


def write_report(state: dict) -> Path:
    """The report: the window and every step run, with its result and timing."""
    lines = [
        f"# Maintenance {state['id']}",
        "",
        f"- author: {state['author']}",
        f"- reason: {state['reason']}",
        f"- started: {state['started_at']}; planned end: {state['planned_end']}",
        f"- ended: {state.get('ended_at') or '-'}",
        f"- phase: {state['phase']}",
        f"- backup: {state.get('backup') or '-'}",
        f"- window (silence): {state.get('silence_id') or '-'}",
        f"- workers scaled down: {_workers_text(state.get('workers') or {}) or 'none'}",
        "",
        "| # | procedure | step | result | started (UTC) | seconds | detail |",
        "|---|---|---|---|---|---|---|",
    ]
    for n, step in enumerate(state["steps"], 1):
        detail = step["detail"].replace("|", "\\|").replace("\n", " ")
        lines.append(
            f"| {n} | {step['procedure']} | {step['step']} | {step['result']} | "
            f"{step['started_at']} | {step['seconds']:.3f} | {detail} |"
        )
    path = report_path(state)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def _execute(run: Run, procedure: str, steps, progress: Callable[[str], None]) -> None:
    state = run.state
    for name, step in steps:
        started, clock = _now_iso(), time.monotonic()
        try:
            detail, result = step(run), "ok"
        except (StepFailed, AlertmanagerError, OSError) as exc:
            detail, result = str(exc), "failed"
        except Exception as exc:  # unforeseen: still a stopped step with a known state
            detail, result = f"{type(exc).__name__}: {exc}", "failed"
        state["steps"].append(
            {
                "procedure": procedure,
                "step": name,
                "result": result,
                "started_at": started,
                "seconds": round(time.monotonic() - clock, 3),
                "detail": detail,
            }
        )
        if result == "failed":
            state["phase"] = f"{procedure} failed"
            _save(state)
            report = write_report(state)
            done = [s["step"] for s in state["steps"] if s["procedure"] == procedure]
            raise ProcedureError(
                f"maintenance {procedure} stopped at step '{name}': {detail}\n"
                f"Steps of this run: {', '.join(done)}. State: {state_path()}; report: {report}.\n"
                f"Fix the cause and run `manage.py maintenance {procedure}` again (each step is "
                "safe to repeat)"
                + (
                    "; or `manage.py maintenance end` to come back out."
                    if procedure == "start"
                    else "."
                )
            )
        progress(f"{name}: {detail}")
        _save(state)
        write_report(state)


def start(options: Options, progress: Callable[[str], None] = lambda line: None) -> dict:
    """Run (or rerun) the pre-maintenance checklist; returns the state."""
    state = load_state()
    if state is None or state["phase"] in ("ended",):
        now = datetime.now(UTC)
        state = {
            "id": now.strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:6],
            "author": options.author,
            "reason": options.reason,
            "started_at": iso(now),
            "planned_end": iso(now + options.duration),
            "phase": "starting",
            "steps": [],
        }
    elif state["phase"].startswith("end"):
        raise ProcedureError(
            f"maintenance {state['id']} is ending ({state['phase']}): run "
            "`manage.py maintenance end` to finish it first"
        )
    else:  # a rerun: the same procedure, its author and reason
        options.author, options.reason = state["author"], state["reason"]
    _save(state)
    _execute(Run(options, state), "start", START_STEPS, progress)
    state["phase"] = "started"
    _save(state)
    write_report(state)
    return state


def end(options: Options, progress: Callable[[str], None] = lambda line: None) -> dict:
    """Run (or rerun) the post-maintenance checklist of the procedure `start` began."""
    state = load_state()
    if state is None or state["phase"] == "ended":
        raise ProcedureError("no maintenance in progress (`manage.py maintenance start` first)")
    options.reason = state["reason"]
    if not options.author:
        options.author = state["author"]
    state["phase"] = "ending"
    _save(state)
    _execute(Run(options, state), "end", END_STEPS, progress)
    state["phase"], state["ended_at"] = "ended", _now_iso()
    _save(state)
    write_report(state)
    return state
