from django.apps import AppConfig


class SecurityConfig(AppConfig):
    name = "security"
    label = "security"
    verbose_name = "Security monitoring: logins, blocks, rate limits, audit, file integrity"

    def ready(self) -> None:
        # Signal receivers and the scrape-time collectors register at import.
        from security import logins, metrics, privileges  # noqa: F401
