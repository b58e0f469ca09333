"""The storefront's pages. Thin: forms are parsed here, the work is the shop's services (the
same ones the REST API calls), and every page renders through `_render` (RUM and analytics)."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST

from shop.accounts import services as accounts
from shop.catalog.models import Category, Product
from shop.errors import ShopError
from shop.orders import services as orders
from shop.orders.models import Order
from shop.payments import services as payments
from shop.payments.gateways import Card
from shop.payments.gateways.base import error_message
from shop.payments.models import Payment
from shop.payments.serializers import PaymentCreateSerializer
from shop.storefront import cart
from shop.storefront.analytics import CONSENT_COOKIE, analytics_context

PENDING_ORDER_KEY = "checkout_order"


def _render(request: HttpRequest, template: str, context: dict, status: int = 200) -> HttpResponse:
    page = request.resolver_match.url_name.removeprefix("store-") if request.resolver_match else ""
    context = {
        **context,
        **analytics_context(request),
        "rum_enabled": settings.RUM_ENABLED,
        "rum_page": page,
        "cart_count": sum(cart.cart_items(request).values()),
    }
    return render(request, template, context, status=status)


def home(request: HttpRequest) -> HttpResponse:
    category = request.GET.get("category", "")
    products = Product.objects.filter(is_active=True).select_related("category")
    if category:
        products = products.filter(category__slug=category)
    context = {
        "categories": Category.objects.all(),
        "category": category,
        "products": products.order_by("category__name", "name")[:200],
    }
    return _render(request, "storefront/home.html", context)


def product(request: HttpRequest, sku: str) -> HttpResponse:
    item = get_object_or_404(Product.objects.select_related("category"), sku=sku, is_active=True)
    return _render(request, "storefront/product.html", {"product": item})


def _safe_next(request: HttpRequest, default: str = "/") -> str:
    target = request.POST.get("next") or request.GET.get("next") or default
    if url_has_allowed_host_and_scheme(target, {request.get_host()}, require_https=False):
        return target
    return default


@require_http_methods(["GET", "HEAD", "POST"])
def login_page(request: HttpRequest) -> HttpResponse:
    context = {"next": _safe_next(request), "error": "", "username": ""}
    if request.method != "POST":
        return _render(request, "storefront/login.html", context)
    username = request.POST.get("username", "")[:150]
    password = request.POST.get("password", "")[:4096]
    try:
        accounts.user_login(request=request, username=username, password=password)
    except accounts.LoginFailed as exc:
        context.update(error=exc.message, username=username)
        return _render(request, "storefront/login.html", context, status=401)
    return redirect(context["next"])


@require_POST
def logout_page(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        accounts.user_logout(request=request, user=request.user)
    return redirect("store-home")


def _quantity(text: str) -> int:
    try:
        return int(text)
    except (TypeError, ValueError):
        return -1


@require_http_methods(["GET", "HEAD", "POST"])
def cart_page(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        product_id, quantity = (
            _quantity(request.POST.get("product")),
            _quantity(request.POST.get("quantity", "1")),
        )
        if product_id <= 0 or quantity < 0:
            lines = cart.cart_lines(request)
            context = {"lines": lines, "error": "Choose a product and a quantity of 0 or more."}
            return _render(request, "storefront/cart.html", _cart_context(context), status=400)
        get_object_or_404(Product, pk=product_id, is_active=True)
        if request.POST.get("action") == "set":
            cart.cart_set(request=request, product_id=product_id, quantity=quantity)
        else:
            cart.cart_add(request=request, product_id=product_id, quantity=max(quantity, 1))
        return redirect("store-cart")  # post/redirect/get: a reload does not add twice
    context = _cart_context({"lines": cart.cart_lines(request), "error": ""})
    return _render(request, "storefront/cart.html", context)


def _cart_context(context: dict) -> dict:
    context["total"] = sum((line.line_total for line in context["lines"]), 0)
    return context


@require_http_methods(["GET", "HEAD", "POST"])
def checkout_page(request: HttpRequest) -> HttpResponse:
    if not request.user.is_authenticated:
        return redirect(f"/login/?next={request.path}")
    order = _pending_order(request)
    lines = cart.cart_lines(request)
    context = _cart_context({"lines": lines, "order": order, "error": "", "payment": None})
    if request.method != "POST":
        if order is None and not lines:
            return redirect("store-cart")
        return _render(request, "storefront/checkout.html", context)
    data = {k: request.POST.get(k, "") for k in ("card_number", "exp_month", "exp_year", "cvc")}
    # The API's own validation of card fields; `order` is checked by the service below.
    serializer = PaymentCreateSerializer(data={**data, "order": order.pk if order else 1})
    if not serializer.is_valid():
        first = next(iter(serializer.errors.values()))
        context["error"] = str(first[0]) if isinstance(first, list) else str(first)
        return _render(request, "storefront/checkout.html", context, status=400)
    try:
        if order is None:
            items = [(line.product.pk, line.quantity) for line in lines]
            if not items:
                return redirect("store-cart")
            order = orders.order_create(user=request.user, items=items)
            request.session[PENDING_ORDER_KEY] = order.pk
            cart.cart_clear(request=request)
            context.update(order=order, lines=[])
        valid = serializer.validated_data
        card = Card(
            number=valid["card_number"],
            exp_month=valid["exp_month"],
            exp_year=valid["exp_year"],
            cvc=valid["cvc"],
        )
        payment = payments.payment_process(
            order_id=order.pk, user=request.user, provider="sandbox", card=card
        )
    except (ShopError, ValidationError) as exc:
        context["error"] = getattr(exc, "message", None) or "; ".join(exc.messages)
        return _render(request, "storefront/checkout.html", context, status=409)
    if payment.status != Payment.Status.SUCCEEDED:
        context["error"] = error_message(payment.error_code)
        return _render(request, "storefront/checkout.html", context, status=402)
    request.session.pop(PENDING_ORDER_KEY, None)
    order.refresh_from_db()
    return _render(request, "storefront/thanks.html", {"order": order, "payment": payment})


def _pending_order(request: HttpRequest) -> Order | None:
    """The order placed at an earlier, declined attempt: it is paid, not placed again."""
    order_id = request.session.get(PENDING_ORDER_KEY)
    if not order_id:
        return None
    order = Order.objects.filter(
        pk=order_id, user=request.user, status=Order.Status.PENDING
    ).first()
    if order is None:
        request.session.pop(PENDING_ORDER_KEY, None)
    return order


@require_POST
def consent(request: HttpRequest) -> HttpResponse:
    answer = "yes" if request.POST.get("consent") == "yes" else "no"
    response = redirect(_safe_next(request))
    response.set_cookie(CONSENT_COOKIE, answer, max_age=180 * 86400, samesite="Lax")
    return response


@cache
def _rum_source() -> bytes:
    return (Path(__file__).parent / "static" / "storefront" / "rum.js").read_bytes()


def rum_script(request: HttpRequest) -> HttpResponse:
    """The beacon, served by the app itself (no static-file server or build step needed)."""
    if not settings.RUM_ENABLED:
        raise Http404("RUM is off")
    response = HttpResponse(_rum_source(), content_type="text/javascript; charset=utf-8")
    response["Cache-Control"] = "public, max-age=3600"
    return response
