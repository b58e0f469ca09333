"""The outbox without Redis (the embedded default): jobs are written in the transaction of the
change, run in-process at commit, once; failures retry with backoff and end dead."""

from datetime import timedelta

import pytest
from celery import shared_task
from django.core import mail
from django.db import transaction
from django.utils import timezone

from shop.errors import InvalidRequest
from shop.orders.services import order_create
from shop.orders.tasks import order_confirmation_send
from shop.outbox.models import Job
from shop.outbox.relay import relay_once
from shop.outbox.services import enqueue, prune, retry_delay, run_job
from shop.payments.models import Payment

pytestmark = pytest.mark.db

GOOD_CARD = "4242424242424242"
failures_left = {"n": 0}


@shared_task(name="tests.outbox.flaky")
def flaky(label: str) -> str:
    """Fails while the test says so (a stand-in for an SMTP server that refuses)."""
    if failures_left["n"] > 0:
        failures_left["n"] -= 1
        raise OSError(f"{label}: refused")
    return label


def test_an_order_and_its_confirmation_job_commit_together(
    customer, make_product, django_capture_on_commit_callbacks
):
    product = make_product()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        order = order_create(user=customer, items=[(product.pk, 1)])
    job = Job.objects.get()
    assert (job.key, job.task, job.args, job.state) == (
        f"order_confirmation_send:{order.pk}",
        order_confirmation_send.name,
        [order.pk],
        Job.State.PENDING,
    )
    assert mail.outbox == []  # nothing runs before the commit
    for callback in callbacks:
        callback()
    job.refresh_from_db()
    assert job.state == Job.State.DONE and job.attempts == 1 and job.finished_at
    [email] = mail.outbox
    assert order.number in email.subject


def test_a_rolled_back_order_leaves_no_job(customer, make_product):
    gold = make_product(price="99999999.99", stock_quantity=500)
    with pytest.raises(InvalidRequest):
        order_create(user=customer, items=[(gold.pk, 200)])
    assert not Job.objects.exists()


def test_a_job_delivered_twice_runs_once(
    customer, make_product, django_capture_on_commit_callbacks
):
    product = make_product()
    with django_capture_on_commit_callbacks(execute=True):
        order_create(user=customer, items=[(product.pk, 1)])
    job = Job.objects.get()
    assert run_job(job.pk) == "skipped"
    Job.objects.filter(pk=job.pk).update(state=Job.State.SENT)  # as if the broker had it twice
    assert run_job(job.pk) == "done"
    assert len(mail.outbox) == 2  # run_job ran it once more only because the test reset it
    assert run_job(job.pk) == "skipped"
    assert len(mail.outbox) == 2


def test_a_payment_owes_one_capture(
    customer_client, customer, make_product, django_capture_on_commit_callbacks
):
    product = make_product()
    order = order_create(user=customer, items=[(product.pk, 1)])
    body = {"order": order.pk, "card_number": GOOD_CARD, "exp_month": 12, "exp_year": 2099}
    with django_capture_on_commit_callbacks(execute=True):
        response = customer_client.post("/api/payments/", {**body, "cvc": "123"}, format="json")
    assert response.status_code == 201
    payment = Payment.objects.get()
    job = Job.objects.get(key=f"payment_capture_task:{payment.pk}")
    assert job.state == Job.State.DONE
    payment.refresh_from_db()
    captured_at = payment.captured_at
    assert captured_at is not None
    assert run_job(job.pk) == "skipped"
    payment.refresh_from_db()
    assert payment.captured_at == captured_at


def test_the_same_intent_twice_is_one_job(db):
    with transaction.atomic():
        first = enqueue(flaky, "a", key="flaky:a")
        second = enqueue(flaky, "a", key="flaky:a")
    assert first.pk == second.pk and Job.objects.count() == 1


def test_a_failing_job_backs_off_then_is_given_up(db, settings):
    settings.OUTBOX_MAX_ATTEMPTS = 3
    failures_left["n"] = 5
    with transaction.atomic():
        job = enqueue(flaky, "b", key="flaky:b")
    Job.objects.filter(pk=job.pk).update(state=Job.State.SENT)
    assert run_job(job.pk) == "retry"
    job.refresh_from_db()
    assert job.state == Job.State.PENDING and "refused" in job.last_error
    assert job.due_at > timezone.now() + retry_delay(1) - timedelta(seconds=5)
    assert relay_once() == 0  # not due yet
    Job.objects.filter(pk=job.pk).update(due_at=timezone.now())
    assert relay_once() == 1
    job.refresh_from_db()
    assert job.attempts == 2 and job.state == Job.State.PENDING
    Job.objects.filter(pk=job.pk).update(due_at=timezone.now())
    relay_once()
    job.refresh_from_db()
    assert job.state == Job.State.DEAD and job.attempts == 3


def test_retry_delay_doubles_up_to_an_hour(settings):
    settings.OUTBOX_RETRY_SECONDS = 30.0
    assert [retry_delay(n).total_seconds() for n in (1, 2, 3, 10)] == [30, 60, 120, 3600]


def test_a_job_sent_but_never_started_is_sent_again(db, settings):
    settings.OUTBOX_REDELIVER_SECONDS = 60.0
    failures_left["n"] = 0
    with transaction.atomic():
        job = enqueue(flaky, "c", key="flaky:c")
    recent, lost = timezone.now(), timezone.now() - timedelta(seconds=61)
    Job.objects.filter(pk=job.pk).update(state=Job.State.SENT, sent_at=recent)
    assert relay_once() == 0
    Job.objects.filter(pk=job.pk).update(sent_at=lost)
    assert relay_once() == 1
    job.refresh_from_db()
    assert job.state == Job.State.DONE and job.attempts == 1


def test_prune_drops_old_done_jobs_and_keeps_dead_ones(db):
    old = timezone.now() - timedelta(days=8)
    for key, state in (("old-done", "done"), ("old-dead", "dead"), ("new-done", "done")):
        Job.objects.create(
            key=key, task=flaky.name, state=state, due_at=old,
            finished_at=old if key.startswith("old") else timezone.now(),
        )  # fmt: skip
    assert prune(older_than=timedelta(days=7)) == 1
    assert sorted(Job.objects.values_list("key", flat=True)) == ["new-done", "old-dead"]
