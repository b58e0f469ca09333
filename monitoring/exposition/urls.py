from django.urls import path

from monitoring.exposition import views

app_name = "monitoring"

urlpatterns = [
    *(
        path(f"{name}/", views.CategoryMetricsView.as_view(category=name), name=name)
        for name in views.CATEGORIES
    ),
]
