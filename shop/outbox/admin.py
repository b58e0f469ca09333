from django.contrib import admin

from shop.outbox.models import Job


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = ("key", "task", "state", "attempts", "due_at", "created_at", "finished_at")
    list_filter = ("state", "task")
    search_fields = ("key",)
    readonly_fields = ("created_at", "sent_at", "finished_at", "last_error")
