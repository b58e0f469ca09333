"""Schemathesis against the app's own OpenAPI schema: no input makes any endpoint answer 5xx."""

import atexit
import json
import shutil
import tempfile
from decimal import Decimal

import pytest
import schemathesis
from django.contrib.auth.models import User
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer
from hypothesis import HealthCheck, settings
from hypothesis.configuration import set_hypothesis_home_dir
from rest_framework.authtoken.models import Token
from schemathesis.checks import not_a_server_error

from shop.catalog.models import Category, Product
from shop.orders.services import order_create

pytestmark = [pytest.mark.django_db, pytest.mark.db]


# Hypothesis caches (constants, unicode data) under ./.hypothesis, already while the
# parametrized tests are collected: keep them in a private temporary directory instead.
_HYPOTHESIS_HOME = tempfile.mkdtemp(prefix="hypothesis-")
atexit.register(shutil.rmtree, _HYPOTHESIS_HOME, ignore_errors=True)
set_hypothesis_home_dir(_HYPOTHESIS_HOME)


def _load_schema():
    """The schema /api/schema/ serves, built by the same generator without a request.

    (Fetching it over WSGI at collection time would record a Visit outside any test database.)
    """
    document = json.loads(OpenApiJsonRenderer().render(SchemaGenerator().get_schema(public=True)))
    loaded = schemathesis.openapi.from_dict(document)
    loaded.app = get_wsgi_application()
    return loaded


schema = _load_schema()


@pytest.fixture
def keep_test_connection():
    """Requests through the WSGI app close "old" connections when they finish, which would
    close the test's own transaction on PostgreSQL; Django's test client skips this too."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def staff_headers(db) -> dict[str, str]:
    """A staff token, so that writes get past authentication and reach validation."""
    staff = User.objects.create_user("fuzz-staff", "staff@example.com", "x", is_staff=True)
    category = Category.objects.create(name="Posters", slug="posters")
    product = Product.objects.create(
        sku="PST-1", name="Poster", category=category, price=Decimal("9.99"), stock_quantity=10**5
    )
    order_create(user=staff, items=[(product.pk, 1)])
    return {"Authorization": f"Token {Token.objects.create(user=staff).key}"}


@schema.parametrize()
@settings(
    max_examples=8,
    deadline=None,
    database=None,  # nothing written into the repository
    suppress_health_check=list(HealthCheck),
)
def test_no_input_makes_the_api_fail(case, staff_headers, keep_test_connection):
    case.call_and_validate(headers=staff_headers, checks=[not_a_server_error])


def test_schema_builds_without_warnings(tmp_path):
    """Every view documents its answers: drf-spectacular warns of none (`--fail-on-warn`)."""
    from django.core.management import call_command

    call_command("spectacular", "--fail-on-warn", "--file", str(tmp_path / "schema.yml"))
    assert "/api/health/detailed/" in (tmp_path / "schema.yml").read_text()
