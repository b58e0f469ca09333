from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet

from shop.errors import NotFound
from shop.orders.models import Order


def order_list(*, user: AbstractBaseUser) -> QuerySet[Order]:
    """The user's own orders; staff see everyone's."""
    orders = Order.objects.prefetch_related("items__product")
    return orders if user.is_staff else orders.filter(user=user)


def order_get(*, user: AbstractBaseUser, order_id: int) -> Order:
    order = order_list(user=user).filter(pk=order_id).first()
    if order is None:
        raise NotFound(f"Order {order_id} does not exist.")
    return order
