"""Development and `make up`: the embedded defaults, with a per-checkout random secret."""

from config.settings.base import *  # noqa: F403
from config.settings.env import env_bool, env_str, local_secret

DEBUG = env_bool("DEBUG", False)
SECRET_KEY = env_str("SECRET_KEY") or local_secret("secret_key")
