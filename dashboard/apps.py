from django.apps import AppConfig


class DashboardConfig(AppConfig):
    name = "dashboard"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.contrib import admin

        # The dashboard sends staff to the admin's sign-in; this one keeps a link's fragment
        # (alerts/#ack=…, from a notification) through it.
        admin.site.login_template = "dashboard/admin_login.html"
