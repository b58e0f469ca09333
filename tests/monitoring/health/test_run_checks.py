"""run_checks and the socket deadline on paths the endpoint tests do not reach (found by
mutation testing, docs/mutation-testing.md): a check that fails unexpectedly, a deadline that
is not reached."""

import logging
import socket

from monitoring.health.checks import DOWN, HealthCheck, _Deadline, run_checks


class BrokenCheck(HealthCheck):
    """A check with a bug: it raises something that is neither ServiceDown nor ServiceDegraded."""

    name = "broken"

    def run(self, *, timeout: float) -> dict:
        raise KeyError("a bug in the check")


def test_a_check_that_fails_unexpectedly_is_down_and_logged(caplog):
    with caplog.at_level(logging.ERROR, logger="monitoring.health"):
        (result,) = run_checks([BrokenCheck()], timeout=30)
    assert result.status == DOWN and result.facts == {}
    assert result.error == "unexpected error (see the application log)"
    assert result.as_dict() == {
        "status": "down",
        "latency_ms": result.latency_ms,
        "error": "unexpected error (see the application log)",
    }
    (record,) = [r for r in caplog.records if r.name == "monitoring.health"]
    assert record.getMessage() == "health check broken failed unexpectedly"
    assert record.exc_info[0] is KeyError


def test_a_deadline_left_before_its_time_has_not_expired_and_leaves_the_socket_usable():
    ours, theirs = socket.socketpair()
    with ours, theirs:
        with _Deadline(ours.fileno(), 60) as deadline:
            theirs.sendall(b"x")
            assert ours.recv(1) == b"x"
        assert deadline.expired is False
        theirs.sendall(b"y")  # the deadline's duplicate was closed, not shut down
        assert ours.recv(1) == b"y"
