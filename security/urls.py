from django.urls import path

from security import api

urlpatterns = [
    path("events/", api.EventList.as_view(), name="security-events"),
    path("blocks/", api.BlockList.as_view(), name="security-blocks"),
    path("blocks/<str:ip>/", api.BlockDetail.as_view(), name="security-block"),
]
