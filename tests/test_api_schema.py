"""Schemathesis against the app's own OpenAPI schema: no input makes any endpoint answer 5xx,
and every answer is one the schema documents: its status, content type, headers and body."""

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
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from shop.catalog.models import Category, Product
from shop.orders.services import order_create

pytestmark = [pytest.mark.django_db, pytest.mark.db, pytest.mark.spread]


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


@pytest.fixture(params=["staff", "customer", "bad-token"])
def headers(request, db) -> dict[str, str]:
    """Who calls: staff (writes get past authentication and reach validation), a customer
    (refused staff operations: 403) and a token that is no one's (401)."""
    # No email address, as createsuperuser allows: the schema must not promise one.
    staff = User.objects.create_user("fuzz-staff", "", "x", is_staff=True)
    customer = User.objects.create_user("fuzz-customer", "c@example.com", "x")
    category = Category.objects.create(name="Posters", slug="posters")
    product = Product.objects.create(
        sku="PST-1", name="Poster", category=category, price=Decimal("9.99"), stock_quantity=10**5
    )
    order_create(user=staff, items=[(product.pk, 1)])
    order_create(user=customer, items=[(product.pk, 1)])
    if request.param == "bad-token":
        return {"Authorization": "Token " + "0" * 40}
    user = staff if request.param == "staff" else customer
    return {"Authorization": f"Token {Token.objects.create(user=user).key}"}


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@schema.parametrize()
@settings(
    max_examples=8,
    deadline=None,
    database=None,  # nothing written into the repository
    suppress_health_check=list(HealthCheck),
)
def test_no_input_makes_the_api_fail(case, headers, keep_test_connection):
    case.call_and_validate(headers=headers, checks=CHECKS)


def test_schema_builds_without_warnings(tmp_path):
    """Every view documents its answers: drf-spectacular warns of none (`--fail-on-warn`)."""
    from django.core.management import call_command

    call_command("spectacular", "--fail-on-warn", "--file", str(tmp_path / "schema.yml"))
    assert "/api/health/detailed/" in (tmp_path / "schema.yml").read_text()


def test_every_operation_documents_its_errors():
    """500 and 503 (with Retry-After) everywhere, 401 wherever a token is read, 404 for an id."""
    document = schema.raw_schema
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            where = f"{method.upper()} {path}"
            assert {"500", "503"} <= set(responses), where
            assert responses["503"]["headers"]["Retry-After"]["required"], where
            if operation.get("security", [{}]) != [{}]:
                assert "401" in responses, where
            if "{" in path:
                assert "404" in responses, where
            for code, response in responses.items():
                if code >= "400":
                    assert set(response["content"]) == {"application/json"}, (where, code)
