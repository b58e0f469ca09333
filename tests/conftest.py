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
    each test's database starts empty, so its counter does too."""
    from shop.visits import counting

    if isinstance(counting._visitors, counting.BatchedVisitors):
        counting._visitors.forget()


@pytest.fixture(autouse=True)
def _fresh_block_list():
    """Each test's database starts without blocks; the per-process copy of the block list
    (refreshed once a second) must not carry one over from the previous test."""
    from security.blocks import BLOCKS

    BLOCKS.forget()
    yield
    BLOCKS.forget()


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """Under pytest-xdist (`--dist loadgroup`, `make test`) a module's tests run on one worker,
    in order, so a module-scoped server is started once; modules that share a Redis database
    name one group (`xdist_group`) and run on one worker, one after the other. A module marked
    `spread` (its tests share nothing) is not grouped: its tests go to whichever worker is
    free. Modules with `slow` tests go first, so the long ones do not start last and leave the
    other workers idle, and `spread` tests last, small units that fill the workers' ends
    evenly (a stable sort: the order within a module is kept)."""
    slow_modules = set()
    for item in items:
        module = item.nodeid.split("::")[0]
        if item.get_closest_marker("slow"):
            slow_modules.add(module)
        if item.get_closest_marker("xdist_group") is None and not item.get_closest_marker("spread"):
            item.add_marker(pytest.mark.xdist_group(module))

    def order(item) -> int:
        if item.nodeid.split("::")[0] in slow_modules:
            return 0
        return 2 if item.get_closest_marker("spread") else 1

    items.sort(key=order)
