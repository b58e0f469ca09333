"""The storefront pages through Django's test client: browse, sign in, cart, checkout, pay."""

import pytest
from django.test import Client, override_settings

from shop.orders.models import Order
from tests.shop.conftest import PASSWORD

pytestmark = [pytest.mark.django_db, pytest.mark.db]


@pytest.fixture
def browser() -> Client:
    return Client()


def test_home_lists_the_catalog_and_links_each_product(browser, make_product):
    poster = make_product(name="Sunset poster")
    hidden = make_product(name="Withdrawn print", is_active=False)
    page = browser.get("/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "Sunset poster" in html and f"/products/{poster.sku}/" in html
    assert hidden.name not in html
    assert '<html lang="en">' in html and 'href="#main"' in html  # language and skip link


def test_home_filters_by_category(browser, make_product, category):
    make_product(name="Only poster")
    assert "Only poster" in browser.get("/?category=posters").content.decode()
    assert "Only poster" not in browser.get("/?category=flyers").content.decode()


def test_product_page_and_unknown_product(browser, make_product):
    product = make_product(name="Giclee print", description="Archival paper")
    page = browser.get(f"/products/{product.sku}/")
    assert page.status_code == 200
    assert "Archival paper" in page.content.decode()
    assert browser.get("/products/NO-SUCH-SKU/").status_code == 404


def test_login_page_signs_in_and_refuses_a_bad_password(browser, customer):
    assert browser.get("/login/").status_code == 200
    bad = browser.post("/login/", {"username": "cyrus", "password": "wrong"})
    assert bad.status_code == 401
    assert "Invalid username or password." in bad.content.decode()
    good = browser.post("/login/", {"username": "cyrus", "password": PASSWORD, "next": "/cart/"})
    assert good.status_code == 302 and good["Location"] == "/cart/"
    assert "Sign out cyrus" in browser.get("/").content.decode()


def test_login_never_redirects_off_site(browser, customer):
    answer = browser.post(
        "/login/",
        {"username": "cyrus", "password": PASSWORD, "next": "https://evil.example/"},
    )
    assert answer["Location"] == "/"


def test_cart_then_checkout_places_and_pays_an_order(browser, customer, make_product):
    product = make_product(price="10.00", stock_quantity=5)
    browser.post("/cart/", {"product": product.pk, "quantity": "2"})
    cart = browser.get("/cart/").content.decode()
    assert "20.00" in cart
    assert browser.get("/checkout/")["Location"].startswith("/login/")
    browser.post("/login/", {"username": "cyrus", "password": PASSWORD})
    card = {"card_number": "4242 4242 4242 4242", "exp_month": "12", "exp_year": "2099"}
    paid = browser.post("/checkout/", {**card, "cvc": "123"})
    assert paid.status_code == 200, paid.content.decode()
    order = Order.objects.get(user=customer)
    assert order.status == Order.Status.PAID and order.total == 20
    assert order.number in paid.content.decode()
    product.refresh_from_db()
    assert product.stock_quantity == 3
    assert "empty" in browser.get("/cart/").content.decode()


def test_a_declined_card_keeps_the_order_for_another_try(browser, customer, make_product):
    product = make_product()
    browser.force_login(customer)
    browser.post("/cart/", {"product": product.pk, "quantity": "1"})
    card = {"exp_month": "12", "exp_year": "2099", "cvc": "123"}
    declined = browser.post("/checkout/", {**card, "card_number": "4000000000000002"})
    assert declined.status_code == 402
    assert "declined" in declined.content.decode()
    paid = browser.post("/checkout/", {**card, "card_number": "4242424242424242"})
    assert paid.status_code == 200
    assert Order.objects.filter(user=customer).count() == 1
    assert Order.objects.get(user=customer).status == Order.Status.PAID


def test_checkout_refuses_a_malformed_card_before_placing_anything(browser, customer, make_product):
    browser.force_login(customer)
    browser.post("/cart/", {"product": make_product().pk, "quantity": "1"})
    answer = browser.post(
        "/checkout/", {"card_number": "12", "exp_month": "13", "exp_year": "2099", "cvc": "1"}
    )
    assert answer.status_code == 400
    assert not Order.objects.exists()


def test_cart_refuses_nonsense(browser):
    assert browser.post("/cart/", {"product": "x", "quantity": "1"}).status_code == 400
    assert browser.post("/cart/", {"product": "999999", "quantity": "1"}).status_code == 404


def test_status_notice_is_rendered_when_the_context_has_one(rf, make_product):
    from django.template.loader import render_to_string

    notice = {"title": "Payments delayed", "message": "Card payments are slow.", "since": "10:02"}
    html = render_to_string("storefront/base.html", {"status_notice": notice})
    assert 'role="status"' in html and "Payments delayed" in html and "10:02" in html
    assert 'id="status-notice"' not in render_to_string("storefront/base.html", {})


def test_beacon_script_served_and_included_only_when_rum_is_on(browser):
    assert 'src="/rum.js"' in browser.get("/login/").content.decode()
    script = browser.get("/rum.js")
    assert script.status_code == 200 and b"sendBeacon" in script.content
    with override_settings(RUM_ENABLED=False):
        assert "rum.js" not in browser.get("/login/").content.decode()
        assert browser.get("/rum.js").status_code == 404


def test_analytics_snippets_only_with_ids_and_consent(browser):
    assert "googletagmanager" not in browser.get("/").content.decode()
    ids = {"GA_MEASUREMENT_ID": "G-ABC123", "HOTJAR_SITE_ID": "12345", "MIXPANEL_TOKEN": ""}
    with override_settings(**ids, ANALYTICS_CONSENT="required"):
        html = browser.get("/").content.decode()
        assert "googletagmanager" not in html and "hotjar" not in html.lower().split("<body")[0]
        assert 'action="/consent/"' in html
        browser.post("/consent/", {"consent": "yes", "next": "/"})
        html = browser.get("/").content.decode()
        assert "googletagmanager" in html and "static.hotjar.com" in html
        assert "mxpnl" not in html and 'action="/consent/"' not in html
    with override_settings(GA_MEASUREMENT_ID="G-1'</script><script>alert(1)"):
        assert "alert(1)" not in Client().get("/").content.decode()  # malformed id: left out
