from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from monitoring.acknowledge.views import ack_link
from monitoring.escalation.views import status_api, status_page

urlpatterns = [
    path("admin/", admin.site.urls),
    path("dashboard/", include("dashboard.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    path("api/health/", include("monitoring.health.urls")),
    path("api/monitoring/", include("monitoring.exposition.urls")),
    path("api/rum/", include("monitoring.rum.urls")),
    # Acknowledgement links and the customer status (docs/escalation.md).
    path("ack/<str:token>", ack_link, name="alert-ack"),
    path("status/", status_page, name="status"),
    path("api/status/", status_api, name="status-api"),
    path("api/security/", include("security.urls")),
    path("api/", include("shop.urls")),
    # The storefront's pages (home, product, login, cart, checkout) last: it owns "/".
    path("", include("shop.storefront.urls")),
]
