import os

from celery import Celery

import monitoring.logging.celery_context  # noqa: F401  (request id into tasks, JSON logging)

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

app = Celery("pasargad")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
