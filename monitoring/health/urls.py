from django.urls import path

from monitoring.health import views

app_name = "health"

urlpatterns = [
    path("", views.health_basic, name="basic"),
    path("detailed/", views.HealthDetailedView.as_view(), name="detailed"),
    *(
        path(f"{name}/", views.HealthComponentView.as_view(component=name), name=name)
        for name in ("database", "redis", "celery")
    ),
]
