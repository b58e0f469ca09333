"""Development and `make up`: the embedded defaults, with a per-checkout random secret."""

from config.settings.base import *  # noqa: F403
from config.settings.env import env_bool, env_str, local_secret

DEBUG = env_bool("DEBUG", False)
SECRET_KEY = env_str("SECRET_KEY") or local_secret("secret_key")

# `make up` runs without a mail server: unless EMAIL_HOST is set, the shop's emails (order
# confirmations, reorder notices) are written as files under var/mail/ instead of failing.
if not env_str("EMAIL_HOST"):
    EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    EMAIL_FILE_PATH = str(VAR_DIR / "mail")  # noqa: F405
