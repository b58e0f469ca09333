"""The circuit breaker on a clock the test turns."""

import pytest

from shop.breaker import CircuitBreaker, CircuitOpen


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def boom() -> None:
    raise OSError("refused")


def test_a_failure_opens_it_and_calls_fail_fast_until_the_reset():
    clock = Clock()
    breaker = CircuitBreaker("redis", reset=1.0, max_reset=8.0, clock=clock)
    with pytest.raises(OSError):
        breaker.call(boom, errors=(OSError,))
    assert breaker.is_open
    with pytest.raises(CircuitOpen):
        breaker.call(lambda: "never called", errors=(OSError,))
    clock.now += 1.0
    assert breaker.call(lambda: "back", errors=(OSError,)) == "back"
    assert not breaker.is_open


def test_one_probe_at_a_time_and_failed_probes_back_off_doubling_to_the_cap():
    clock = Clock()
    breaker = CircuitBreaker("redis", reset=1.0, max_reset=4.0, clock=clock)
    breaker.failure()
    waits = []
    for _ in range(4):
        start = clock.now
        while not breaker.ready():
            clock.now += 0.5
        waits.append(clock.now - start)
        assert breaker.allow()  # the probe
        assert not breaker.allow()  # nobody else while it runs
        breaker.failure()
    assert waits == [1.0, 2.0, 4.0, 4.0]
    clock.now += 4.0
    assert breaker.allow()
    breaker.success()
    assert breaker.allow() and breaker.allow()


def test_an_error_that_is_not_the_dependencys_ends_the_probe_without_opening():
    clock = Clock()
    breaker = CircuitBreaker("redis", reset=1.0, clock=clock)
    breaker.failure()
    clock.now += 1.0

    def bug() -> None:
        raise ValueError("ours")

    with pytest.raises(ValueError):
        breaker.call(bug, errors=(OSError,))
    assert breaker.ready()  # another probe may go
