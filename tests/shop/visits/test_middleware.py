import pytest
from django.test import Client
from django.utils import timezone

from shop.visits.middleware import COOKIE
from shop.visits.models import Visit

pytestmark = [pytest.mark.django_db, pytest.mark.db]


def test_one_visit_per_visitor_per_day(category):
    browser = Client()
    for _ in range(3):
        assert browser.get("/api/catalog/products/").status_code == 200
    [visit] = Visit.objects.all()
    assert visit.day == timezone.localdate() and visit.user_id is None
    assert visit.visitor_key == browser.cookies[COOKIE].value
    Client().get("/api/catalog/categories/")
    assert Visit.objects.count() == 2


def test_visit_remembers_the_logged_in_user(customer):
    browser = Client()
    browser.force_login(customer)
    browser.get("/api/accounts/me/")
    assert Visit.objects.get().user_id == customer.pk


def test_forged_visitor_cookie_is_replaced(category):
    browser = Client()
    browser.cookies[COOKIE] = "<script>"
    response = browser.get("/api/catalog/products/")
    key = response.cookies[COOKIE].value
    assert key != "<script>" and key.isalnum() and len(key) == 32
    assert Visit.objects.get().visitor_key == key


def test_a_visitor_seen_yesterday_counts_again_today(category):
    browser = Client()
    browser.get("/api/catalog/products/")
    browser.cookies[COOKIE + "_day"] = "2001-01-01"  # the day marker of an earlier day
    Visit.objects.update(day="2001-01-01")
    browser.get("/api/catalog/products/")
    assert sorted(str(v.day) for v in Visit.objects.all()) == [
        "2001-01-01",
        timezone.localdate().isoformat(),
    ]


def test_monitoring_paths_are_not_visits(db):
    Client().get("/api/health/")
    Client().get("/api/monitoring/prometheus/")
    assert not Visit.objects.exists()
