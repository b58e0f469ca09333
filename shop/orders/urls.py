from django.urls import path

from shop.orders import views

urlpatterns = [
    path("", views.OrderListCreateView.as_view(), name="order-list"),
    path("<int:pk>/", views.OrderDetailView.as_view(), name="order-detail"),
    path("<int:pk>/cancel/", views.OrderCancelView.as_view(), name="order-cancel"),
    path("<int:pk>/status/", views.OrderStatusView.as_view(), name="order-status"),
]
