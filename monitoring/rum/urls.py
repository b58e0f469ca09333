from django.urls import path

from monitoring.rum import views

urlpatterns = [path("", views.rum_beacon, name="rum-beacon")]
