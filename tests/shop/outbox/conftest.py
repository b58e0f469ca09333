import pytest

from shop import breaker


@pytest.fixture(autouse=True)
def fresh_breakers():
    """Each test starts with closed breakers (they are per process)."""
    breaker._breakers.clear()
    yield
    breaker._breakers.clear()
