from django.contrib import admin

from shop.visits.models import Visit


@admin.register(Visit)
class VisitAdmin(admin.ModelAdmin):
    list_display = ["day", "visitor_key", "user_id", "first_seen"]
    list_filter = ["day"]
