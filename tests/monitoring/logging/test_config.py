import json
import logging
import logging.config

import pytest
from django.conf import settings

from monitoring.logging.config import LoggingConfigurationError, logging_config


@pytest.fixture
def apply_logging():
    """Apply a LOGGING dict for one test, then put the project's own back."""
    yield logging.config.dictConfig
    logging.config.dictConfig(settings.LOGGING)


def test_files_mode_splits_application_and_access_logs(tmp_path, apply_logging):
    apply_logging(logging_config(log_dir=tmp_path / "log", environment="staging"))
    logging.getLogger("shop.orders").warning("order failed", extra={"order_id": 7})
    logging.getLogger("access").info("GET /api/ 200", extra={"status": 200})
    logging.getLogger("django.request").error("Internal Server Error: /api/")
    logging.getLogger("shop.orders").debug("not written at INFO")
    logging.getLogger("httpx").info('HTTP Request: GET http://x/ "HTTP/1.1 200 OK"')  # per scrape
    app = [json.loads(x) for x in (tmp_path / "log/app.log").read_text().splitlines()]
    access = [json.loads(x) for x in (tmp_path / "log/access.log").read_text().splitlines()]
    assert [line["message"] for line in app] == ["order failed", "Internal Server Error: /api/"]
    assert [line["message"] for line in access] == ["GET /api/ 200"]
    assert app[0]["environment"] == "staging" and app[0]["order_id"] == 7


def test_stdout_only_writes_no_files(tmp_path, apply_logging, capsys):
    apply_logging(logging_config(log_dir=tmp_path / "log", stdout_only=True, log_format="console"))
    logging.getLogger("shop").warning("hello %s", "there")
    logging.getLogger("access").info("GET / 200")
    out = capsys.readouterr().out
    assert "WARNING  shop [-] hello there" in out and "access [-] GET / 200" in out
    assert not (tmp_path / "log" / "app.log").exists()


def test_level_is_applied(tmp_path, apply_logging):
    apply_logging(logging_config(log_dir=tmp_path, level="error"))
    logging.getLogger("shop").warning("dropped")
    logging.getLogger("shop").error("kept")
    assert [json.loads(x)["message"] for x in (tmp_path / "app.log").read_text().splitlines()] == [
        "kept"
    ]


@pytest.mark.parametrize(
    "kwargs,variable",
    [({"log_format": "xml"}, "LOG_FORMAT='xml'"), ({"level": "LOUD"}, "LOG_LEVEL='LOUD'")],
)
def test_bad_settings_are_refused_naming_the_variable(tmp_path, kwargs, variable):
    with pytest.raises(LoggingConfigurationError, match=variable):
        logging_config(log_dir=tmp_path, **kwargs)


def test_gunicorn_master_logs_through_the_app_logging(tmp_path, apply_logging):
    from monitoring.logging.config import gunicorn_logconfig

    apply_logging(gunicorn_logconfig(logging_config(log_dir=tmp_path)))
    logging.getLogger("gunicorn.error").critical("WORKER TIMEOUT (pid:123)")
    logging.getLogger("gunicorn.access").info('127.0.0.1 - - "GET / HTTP/1.1" 200')
    (line,) = [json.loads(x) for x in (tmp_path / "app.log").read_text().splitlines()]
    assert line["logger"] == "gunicorn.error" and line["level"] == "CRITICAL"
    assert not (tmp_path / "access.log").exists()
