"""Tests: the same settings as development, with fast hashing and a fixed secret."""

import os

# Parallel test workers (pytest-xdist) each keep their own state directory: the in-process
# tests share var/'s file cache, maintenance flag and rate-limit counters otherwise.
if os.environ.get("PYTEST_XDIST_WORKER") and "VAR_DIR" not in os.environ:
    from config.settings.env import BASE_DIR as _BASE_DIR

    os.environ["VAR_DIR"] = str(_BASE_DIR / "var" / f"test-{os.environ['PYTEST_XDIST_WORKER']}")

from config.settings.base import *  # noqa: E402, F403

DEBUG = False
SECRET_KEY = "test-only-secret-key-not-for-any-deployment-0123456789"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# Parallel checkouts on one machine pick their own test database name.
if DATABASES["default"]["ENGINE"] != "django.db.backends.sqlite3":  # noqa: F405
    from config.settings.env import env_str

    DATABASES["default"]["TEST"] = {"NAME": env_str("TEST_DB_NAME", "test_pasargad")}  # noqa: F405

# Tests log to stdout (captured by pytest) unless a test asks for files in its own tmp dir.
from config.settings.env import env_bool as _env_bool  # noqa: E402

if _env_bool("LOG_TO_STDOUT_ONLY", True):
    LOG_TO_STDOUT_ONLY = True
    LOGGING = logging_config(  # noqa: F405
        log_format=LOG_FORMAT,  # noqa: F405
        log_dir=LOG_DIR,  # noqa: F405
        stdout_only=True,
        level=LOG_LEVEL,  # noqa: F405
        environment=ENVIRONMENT,  # noqa: F405
    )

# Tests relay outbox jobs inline at commit (a relay thread would outlive the test's database),
# unless a test runs the app as a server and asks for the thread.
OUTBOX_RELAY_THREAD = _env_bool("OUTBOX_RELAY_THREAD", False)

# The suite sends thousands of requests from 127.0.0.1 (and many 401s and 404s on purpose): the
# rate limit and scan detection are out of its way unless a test (or a drill's environment)
# sets them (tests/security/).
from config.settings.env import env_float as _env_float  # noqa: E402

SECURITY_RATE_LIMIT = int(_env_float("SECURITY_RATE_LIMIT", 1_000_000_000))
SECURITY_BURST_LIMIT = int(_env_float("SECURITY_BURST_LIMIT", 1_000_000_000))

# A drill that needs some logins as slow as in production (tests/security/test_drills.py): a
# password stored with PBKDF2 is checked with it, new ones are still hashed fast.
if _env_bool("REAL_PASSWORD_HASHING", False):
    PASSWORD_HASHERS = [*PASSWORD_HASHERS, "django.contrib.auth.hashers.PBKDF2PasswordHasher"]
