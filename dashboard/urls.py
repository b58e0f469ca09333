from django.urls import path

from dashboard import views

urlpatterns = [
    path("", views.overview, name="dashboard"),
    path("api/batch", views.batch, name="dashboard-batch"),
    path("api/v1/<str:endpoint>", views.prometheus_proxy, name="dashboard-prometheus"),
    path("api/alerts/groups", views.alert_groups, name="dashboard-alert-groups"),
    path("api/silences", views.silences, name="dashboard-silences"),
    path("api/silences/<str:silence_id>", views.silence_expire, name="dashboard-silence"),
    path("api/acks", views.acks, name="dashboard-acks"),
    path("api/alerts/<str:alert_fingerprint>/ack", views.ack, name="dashboard-ack"),
    path("api/history/<str:alert_fingerprint>", views.history, name="dashboard-history"),
    path("static/<path:path>", views.asset, name="dashboard-asset"),
    path("runbooks/<str:name>/", views.runbook, name="dashboard-runbook"),
    path("<slug:slug>/", views.category, name="dashboard-category"),
]
