from django.urls import path

from monitoring.exposition import views
from monitoring.exposition.prometheus import prometheus_metrics

urlpatterns = [
    path("prometheus/", prometheus_metrics, name="monitoring-prometheus"),
    *(
        path(
            f"{name}/", views.CategoryMetricsView.as_view(category=name), name=f"monitoring-{name}"
        )
        for name in views.CATEGORIES
    ),
]
