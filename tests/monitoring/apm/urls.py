"""The shop's URLs plus two views for the APM tests: one that fails, one that enqueues a task
that fails (tasks.py)."""

import json

from django.http import HttpResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from config.urls import urlpatterns as shop_urlpatterns
from tests.monitoring.apm.tasks import QUEUE, charge


@csrf_exempt  # called like the API: a token, no session
def checkout_fails(request):
    body = json.loads(request.body)
    password = body["password"]  # frame locals: Sentry sends them, redaction must scrub them
    card_number = body["card_number"]
    raise RuntimeError(f"checkout failed: card {card_number} password={password}")


@csrf_exempt
def checkout_enqueues(request):
    if not request.user.is_authenticated:
        return HttpResponse(status=403)
    body = json.loads(request.body)
    charge.apply_async((body["card_number"],), {"api_token": body["api_token"]}, queue=QUEUE)
    return HttpResponse(status=202)


urlpatterns = [
    path("apm-test/fails/", checkout_fails),
    path("apm-test/enqueues/", checkout_enqueues),
    *shop_urlpatterns,
]
