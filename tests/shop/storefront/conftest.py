import pytest


@pytest.fixture(autouse=True)
def _visitors_forgotten_after():
    """Storefront pages count visitors in batches; what a test's last page queued belongs to
    its rolled-back database, so it is dropped, not flushed after the database is gone."""
    yield
    from shop.visits import counting

    if isinstance(counting._visitors, counting.BatchedVisitors):
        counting._visitors.forget()
