import datetime

from shop.visits.models import Visit


def visit_record(*, day: datetime.date, visitor_key: str, user_id: int | None) -> None:
    Visit.objects.get_or_create(day=day, visitor_key=visitor_key, defaults={"user_id": user_id})
