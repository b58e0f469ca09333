from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet

from shop.errors import NotFound
from shop.payments.models import Payment


def payment_list(*, user: AbstractBaseUser) -> QuerySet[Payment]:
    """Payments for the user's orders; staff see all."""
    payments = Payment.objects.select_related("order")
    return payments if user.is_staff else payments.filter(order__user=user)


def payment_get(*, user: AbstractBaseUser, payment_id: int) -> Payment:
    payment = payment_list(user=user).filter(pk=payment_id).first()
    if payment is None:
        raise NotFound(f"Payment {payment_id} does not exist.")
    return payment
