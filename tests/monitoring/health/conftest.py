import pytest

from monitoring.collectors import collectors
from tests.faults import closed_port, hung_server

TOKEN = "health-test-token-0123456789"
TIMEOUT = 0.5


@pytest.fixture
def health_settings(settings):
    """Short check timeout, no cached basic answer, a bearer token, Redis off unless a test sets it."""
    settings.HEALTH_CHECK_TIMEOUT = TIMEOUT
    settings.HEALTH_BASIC_CACHE_SECONDS = 0
    settings.MONITORING_TOKEN = TOKEN
    settings.REDIS_URL = ""
    # The endpoints' collectors are built once per process from the settings and keep their
    # readings (business: 60 s): start from new ones, built from these settings.
    collectors.cache_clear()
    yield settings
    collectors.cache_clear()


@pytest.fixture
def reader(client):
    """GET as a monitoring reader (bearer token)."""

    def get(url):
        return client.get(url, HTTP_AUTHORIZATION=f"Bearer {TOKEN}")

    return get


def postgres_at(port: int) -> dict:
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": "pasargad",
        "USER": "postgres",
        "HOST": "127.0.0.1",
        "PORT": str(port),
    }


@pytest.fixture
def broken_database(health_settings):
    """Point the health check's database at a given port (the app's own connection is untouched)."""

    def point_at(port: int) -> None:
        health_settings.DATABASES = {**health_settings.DATABASES, "default": postgres_at(port)}

    return point_at


@pytest.fixture
def hung():
    with hung_server() as server:
        yield server


@pytest.fixture
def refused_port():
    return closed_port()
