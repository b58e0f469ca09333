import logging

import pytest
from django.contrib.auth import get_user_model
from django.db import DatabaseError, IntegrityError, connection, transaction

from monitoring.logging.counters import LogCounterHandler
from tests.monitoring.metric_values import sample_value as sample


@pytest.fixture
def counted():
    """The counting handler on a throwaway logger tree, as LOGGING puts it on the root."""
    handler = LogCounterHandler()
    loggers = [logging.getLogger(name) for name in ("payments", "shop.payments", "shop.orders")]
    for logger in loggers:
        logger.addHandler(handler)
        logger.propagate = False
    yield
    for logger in loggers:
        logger.removeHandler(handler)
        logger.propagate = True


def test_records_are_counted_by_level_and_errors_by_logger(counted):
    before_warning = sample("log_records_total", level="WARNING")
    before_errors = sample("log_errors_total", logger="shop.orders")
    log = logging.getLogger("shop.orders")
    log.warning("low stock")
    log.error("order failed")
    log.critical("cannot write orders")
    log.debug("not enabled at this level, not counted")
    assert sample("log_records_total", level="WARNING") == before_warning + 1
    assert sample("log_errors_total", logger="shop.orders") == before_errors + 2


def test_payment_errors_are_counted_by_error_code(counted):
    before = sample("payment_errors_total", error_code="card_declined")
    before_expired = sample("payment_errors_total", error_code="expired_card")
    logging.getLogger("payments").error("Payment failed", extra={"error_code": "card_declined"})
    logging.getLogger("shop.payments.services").warning(
        "Payment failed", extra={"error_code": "expired_card"}
    )
    # Not payment errors: another logger, no error code, or only informational.
    logging.getLogger("shop.orders").error("x", extra={"error_code": "card_declined"})
    logging.getLogger("payments").error("Payment failed")
    logging.getLogger("payments").info("retrying", extra={"error_code": "card_declined"})
    assert sample("payment_errors_total", error_code="card_declined") == before + 1
    assert sample("payment_errors_total", error_code="expired_card") == before_expired + 1


@pytest.mark.db
@pytest.mark.django_db
def test_database_errors_are_counted_by_kind_where_they_happen():
    before_integrity = sample("database_errors_total", kind="IntegrityError")
    User = get_user_model()
    User.objects.create_user("bob")
    with pytest.raises(IntegrityError), transaction.atomic():
        User.objects.create_user("bob")  # handled by the caller, still counted
    assert sample("database_errors_total", kind="IntegrityError") == before_integrity + 1

    kinds = ("OperationalError", "ProgrammingError")  # SQLite / PostgreSQL for a missing table
    before = sum(sample("database_errors_total", kind=k) for k in kinds)
    with pytest.raises(DatabaseError), connection.cursor() as cursor:
        cursor.execute("SELECT * FROM no_such_table")
    assert sum(sample("database_errors_total", kind=k) for k in kinds) == before + 1


def test_database_errors_no_statement_saw_are_counted_once_when_unhandled():
    """A failed connect never reaches the execute wrapper: the request and task failure
    signals count it, and an error the wrapper already counted is not counted again."""
    from celery.signals import task_failure
    from django.core.signals import got_request_exception
    from django.db import OperationalError

    before = sample("database_errors_total", kind="OperationalError")
    try:
        raise OperationalError('connection to server at "127.0.0.1", port 1 failed')
    except OperationalError as exc:
        got_request_exception.send(sender=None, request=None)
        got_request_exception.send(sender=None, request=None)  # same exception: once
        lost = exc
    assert sample("database_errors_total", kind="OperationalError") == before + 1
    task_failure.send(sender=None, task_id="t1", exception=OperationalError("server closed"))
    task_failure.send(sender=None, task_id="t2", exception=lost)
    task_failure.send(sender=None, task_id="t3", exception=ValueError("not a database error"))
    assert sample("database_errors_total", kind="OperationalError") == before + 2


def test_known_levels_and_database_error_kinds_are_exported_from_zero():
    """So the first error after a restart is an increase the alert rules can see."""
    from prometheus_client.parser import text_string_to_metric_families

    from monitoring.metrics import exposition

    families = {f.name: f for f in text_string_to_metric_families(exposition().decode())}
    kinds = {s.labels["kind"] for s in families["database_errors"].samples}
    levels = {s.labels["level"] for s in families["log_records"].samples}
    assert {"IntegrityError", "OperationalError", "ProgrammingError", "DataError"} <= kinds
    assert {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"} <= levels
