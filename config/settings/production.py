"""Production: no unsafe defaults; every secret must come from the environment."""

from config.settings.base import *  # noqa: F403
from config.settings.env import ConfigurationError, env_bool, env_str

DEBUG = False
SECRET_KEY = env_str("SECRET_KEY")
if len(SECRET_KEY) < 32:
    raise ConfigurationError("SECRET_KEY must be set to at least 32 characters in production")

SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
# Health probes come over plain HTTP from the local machine or the load balancer.
SECURE_REDIRECT_EXEMPT = [r"^api/health/", r"^api/monitoring/prometheus/$"]
SECURE_HSTS_SECONDS = 3600
