from django.urls import path

from shop.storefront import views

urlpatterns = [
    path("", views.home, name="store-home"),
    path("products/<str:sku>/", views.product, name="store-product"),
    path("login/", views.login_page, name="store-login"),
    path("logout/", views.logout_page, name="store-logout"),
    path("cart/", views.cart_page, name="store-cart"),
    path("checkout/", views.checkout_page, name="store-checkout"),
    path("consent/", views.consent, name="store-consent"),
    path("rum.js", views.rum_script, name="store-rum-js"),
]
