from django.urls import path

from shop.accounts import views

urlpatterns = [
    path("register/", views.RegisterView.as_view(), name="account-register"),
    path("login/", views.LoginView.as_view(), name="account-login"),
    path("logout/", views.LogoutView.as_view(), name="account-logout"),
    path("me/", views.MeView.as_view(), name="account-me"),
]
