import pytest
from django.conf import settings

from tests.services import require_postgres


@pytest.fixture(autouse=True)
def _postgres_marker(request):
    """Tests marked `postgres` need the PostgreSQL run; in the SQLite run they are deselected."""
    if request.node.get_closest_marker("postgres"):
        require_postgres()
        engine = settings.DATABASES["default"]["ENGINE"]
        if "postgresql" not in engine:
            pytest.fail("a `postgres` test ran without DATABASE_URL pointing at PostgreSQL")


@pytest.fixture(autouse=True)
def _fresh_visitor_counter():
    """The in-process visitor counter (no Redis) remembers ids and queues rows across tests;
    each test's database starts empty, so its counter does too. What a test left queued is
    dropped after it too: flushed at exit, it would go to the database the settings name once
    the test database is gone."""
    from shop.visits import counting

    if isinstance(counting._visitors, counting.BatchedVisitors):
        counting._visitors.forget()
    yield
    if isinstance(counting._visitors, counting.BatchedVisitors):
        counting._visitors.forget()


@pytest.fixture(autouse=True)
def _fresh_database_reachable():
    """The basic health check's answer is kept a second per process: an "unreachable" left by
    a test that cut its database must not answer the next test's probe."""
    from monitoring.health import checks

    checks._reachable.clear()


@pytest.fixture(autouse=True)
def _fresh_block_list():
    """Each test's database starts without blocks; the per-process copy of the block list
    (refreshed once a second) must not carry one over from the previous test."""
    from security.blocks import BLOCKS

    BLOCKS.forget()
    yield
    BLOCKS.forget()


def pytest_itemcollected(item):
    """Under pytest-xdist (`--dist loadgroup`, `make test`) a module's tests run on one worker,
    in order, so a module-scoped server is started once; modules that share a Redis database
    name one group (`xdist_group`) and run on one worker, one after the other. A module marked
    `spread` (its tests share nothing) is not grouped: its tests go to whichever worker is
    free. (Marked as each item is collected: xdist reads the groups in its own
    pytest_collection_modifyitems.)"""
    if item.get_closest_marker("xdist_group") is None and not item.get_closest_marker("spread"):
        item.add_marker(pytest.mark.xdist_group(item.nodeid.split("::")[0]))


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config, items):
    """In an xdist worker, whose collection order is the order work is handed out
    (`--no-loadscope-reorder`): modules with `slow` tests first, so the long ones do not start
    last and leave the other workers idle, and `spread` tests last, small units that fill the
    workers' ends evenly. Last of the hooks, after pytest-django's sort by kind of database
    use, which is kept within each of these three (a stable sort). A run without xdist keeps
    pytest-django's order."""
    if not hasattr(config, "workerinput"):
        return
    slow_modules = {item.nodeid.split("::")[0] for item in items if item.get_closest_marker("slow")}

    def order(item) -> int:
        if item.nodeid.split("::")[0] in slow_modules:
            return 0
        return 2 if item.get_closest_marker("spread") else 1

    items.sort(key=order)
