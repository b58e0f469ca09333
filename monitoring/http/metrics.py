"""HTTP request metrics. The middleware calls `observe_request` once per request."""


def observe_request(
    method: str, route: str, status: int, duration_seconds: float, user_id: int | None
) -> None:
    # Replaced by the real counters and histogram (issue 3); kept as the middleware's contract.
    return None
