import pytest

from monitoring.collectors.redis import redis_client
from tests.services import require_redis

# This checkout's own Redis database (never FLUSHALL: the other databases are other people's).
REDIS_URL = "redis://127.0.0.1:6379/2"


@pytest.fixture
def redis_db():
    require_redis()
    client = redis_client(REDIS_URL, timeout=1.0)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()
