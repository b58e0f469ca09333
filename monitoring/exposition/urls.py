from django.urls import path

from monitoring.exposition.prometheus import prometheus_metrics

urlpatterns = [
    path("prometheus/", prometheus_metrics, name="monitoring-prometheus"),
]
