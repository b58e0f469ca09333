"""Visits: recording a visitor of the day, and how many there were (shop/visits/counting.py)."""

import datetime

from shop.visits.counting import visitor_id, visitors


def visit_record(
    *,
    day: datetime.date,
    cookie: str = "",
    address: str = "",
    agent: str = "",
    user_id: int | None = None,
) -> None:
    """Count a visitor of `day`: by its cookie, or by address and user agent without one."""
    key = visitor_id(day=day, cookie=cookie, address=address, agent=agent)
    visitors().add(day, key, user_id)


def visitors_on(*, day: datetime.date) -> int:
    """Unique visitors of `day` (an estimate within ~1 % with Redis, exact without)."""
    return visitors().count(day)
