import os
import signal
import threading

from django.conf import settings
from django.core.management.base import BaseCommand

from maintenance import pause
from shop.periodic import run_schedule


class Command(BaseCommand):
    help = "Run CELERY_BEAT_SCHEDULE's tasks in this process (the embedded mode, no Redis)."

    def handle(self, *args, **options):
        from config.celery import app

        app.loader.import_default_modules()  # the tasks modules (autodiscovery is lazy)
        stop = threading.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())

        def run(task: str) -> None:
            if pause.paused():  # maintenance (maintenance/pause.py): skipped, not queued
                self.stdout.write(f"beat_inprocess: paused for maintenance, {task} skipped")
                return
            result = app.tasks[task].apply()
            if result.failed():
                raise result.result

        schedule = settings.CELERY_BEAT_SCHEDULE
        self.stdout.write(f"beat_inprocess: running {', '.join(schedule)}")
        try:
            run_schedule(schedule, run=run, stop=stop)
        finally:
            from monitoring.metrics import mark_process_dead

            mark_process_dead(os.getpid())
