from django.urls import path

from monitoring.exposition import views
from monitoring.exposition.alertmanager import alertmanager_receiver
from monitoring.exposition.prometheus import prometheus_metrics

urlpatterns = [
    path("alertmanager/", alertmanager_receiver, name="monitoring-alertmanager"),
    path("alertmanager/dashboard", alertmanager_receiver, {"channel": "dashboard"}),
    path("alertmanager/sms", alertmanager_receiver, {"channel": "sms"}),
    path("prometheus/", prometheus_metrics, name="monitoring-prometheus"),
    *(
        path(
            f"{name}/", views.CategoryMetricsView.as_view(category=name), name=f"monitoring-{name}"
        )
        for name in views.CATEGORIES
    ),
]
