"""`GET /api/monitoring/prometheus/`: every metric in Prometheus text format 0.0.4.

Readable with `Authorization: Bearer <MONITORING_TOKEN>` (when a token is configured) or a
staff session; anyone else gets 401 (no credentials or wrong ones) or 403 (a signed-in user who
is not staff) and no data.
A plain Django view, not DRF: Prometheus scrapes it often and needs none of DRF's machinery.
"""

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_GET

from monitoring.auth import CHALLENGE, is_monitoring_reader
from monitoring.metrics import CONTENT_TYPE, exposition


def refusal(request: HttpRequest) -> JsonResponse:
    """401 when the caller is nobody (no credentials, or wrong ones), 403 when a signed-in
    user is not enough."""
    user = getattr(request, "user", None)
    if not (user is not None and user.is_authenticated):
        wrong = bool(request.META.get("HTTP_AUTHORIZATION"))
        detail = (
            "Invalid credentials." if wrong else "Authentication credentials were not provided."
        )
        response = JsonResponse({"detail": detail}, status=401)
        response["WWW-Authenticate"] = CHALLENGE
        return response
    return JsonResponse(
        {"detail": "Monitoring data needs a staff session or the monitoring bearer token."},
        status=403,
    )


@require_GET
def prometheus_metrics(request: HttpRequest) -> HttpResponse:
    if not is_monitoring_reader(request):
        return refusal(request)
    return HttpResponse(exposition(), content_type=CONTENT_TYPE)
