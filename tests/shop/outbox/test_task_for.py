"""The relay finds a task whose module the web process never imported (a job written by
another process): Celery registers a task only when its module is imported."""

import sys

import pytest

from config.celery import app
from shop.outbox.relay import task_for

NAME = "tests.shop.outbox.late_task.late"


def test_a_task_whose_module_was_never_imported_is_found():
    assert "tests.shop.outbox.late_task" not in sys.modules and NAME not in app.tasks
    assert task_for(NAME).name == NAME


def test_an_unknown_task_raises():
    with pytest.raises(ModuleNotFoundError):
        task_for("shop.nowhere.tasks.nothing")
