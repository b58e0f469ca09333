"""Level 1, the automated response: each configured action run once, its result as text.

- ``pool_restart``: Celery remote control's ``pool_restart`` to the workers (optionally one
  ``destination``); the workers must run with ``worker_pool_restarts`` (settings:
  ``CELERY_WORKER_POOL_RESTARTS``), otherwise they answer with an error, which is reported;
- ``purge_queue``: drop the messages waiting in a broker queue (a runaway queue);
- ``clear_cache``: ``caches[cache].clear()`` (default cache unless named);
- ``command``: a management command with arguments, its output kept (cut to 500 characters).

An action never raises: a failure is its result (``ok`` False, the reason in ``text``).
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass

from monitoring.escalation.policy import Action

__all__ = ["ActionResult", "action_run"]

logger = logging.getLogger(__name__)

REPLY_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class ActionResult:
    action: str
    ok: bool
    text: str

    def as_dict(self) -> dict:
        return {"action": self.action, "ok": self.ok, "text": self.text}


def action_run(action: Action) -> ActionResult:
    try:
        ok, text = _RUNNERS[action.kind](action.options)
    except Exception as exc:  # the result says what went wrong; the climb goes on
        logger.exception("escalation action %s failed", action.describe())
        ok, text = False, f"{type(exc).__name__}: {exc}"
    return ActionResult(action.describe(), ok, text)


def _celery():
    from config.celery import app

    return app


def _pool_restart(options) -> tuple[bool, str]:
    destination = options.get("destination")
    replies = _celery().control.pool_restart(
        reload=False,
        destination=[destination] if destination else None,
        reply=True,
        timeout=REPLY_TIMEOUT_S,
    )
    if not replies:
        return False, "no Celery worker answered the pool restart"
    done, failed = [], []
    for reply in replies:
        for worker, answer in reply.items():
            (done if "ok" in answer else failed).append(f"{worker}: {answer.get('ok') or answer}")
    text = f"restarted the worker pool of {len(done)} worker(s)"
    if failed:
        text += f"; refused by {len(failed)}: " + "; ".join(failed)
    return not failed, text


def _purge_queue(options) -> tuple[bool, str]:
    queue = str(options["queue"])
    with _celery().connection_for_write() as conn:
        count = conn.default_channel.queue_purge(queue) or 0
    return True, f"purged {count} message(s) from queue {queue}"


def _clear_cache(options) -> tuple[bool, str]:
    from django.core.cache import caches

    name = str(options.get("cache") or "default")
    caches[name].clear()
    return True, f"cleared cache {name}"


def _command(options) -> tuple[bool, str]:
    from django.core.management import call_command

    out = io.StringIO()
    name, args = str(options["command"]), [str(a) for a in options.get("args") or []]
    call_command(name, *args, stdout=out, stderr=out)
    output = " ".join(out.getvalue().split())[:500]
    return True, f"ran manage.py {' '.join([name, *args])}" + (f": {output}" if output else "")


_RUNNERS = {
    "pool_restart": _pool_restart,
    "purge_queue": _purge_queue,
    "clear_cache": _clear_cache,
    "command": _command,
}
