"""Series one host exports (docs/scale.md's capacity plan): gunicorn with 4 workers on a
migrated SQLite database and Redis (db 7), some traffic over the shop's routes, then one scrape
as the shop-wide lease holder and one as another host. Prints JSON; run from the repository
root: `PYTHONPATH=$PWD python bench/series_per_host.py`.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx
import redis
from prometheus_client.parser import text_string_to_metric_families

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.gunicorn import Gunicorn  # noqa: E402

LEASE_KEY = "monitoring:shop-wide-exporter"  # monitoring/collectors/shop_wide.py (no Django here)

BROKER = "redis://127.0.0.1:6379/7"
ROUTES = ["/api/products/", "/api/categories/", "/api/health/", "/api/orders/",
          "/api/cart/", "/api/no-such-route/", "/"]  # fmt: skip


def count(text: str) -> tuple[int, Counter]:
    families = Counter()
    for family in text_string_to_metric_families(text):
        families[family.name] += len(family.samples)
    return sum(families.values()), families


def main() -> None:
    client = redis.Redis.from_url(BROKER)
    client.delete(LEASE_KEY)
    with tempfile.TemporaryDirectory() as tmp:
        env = {"REDIS_URL": BROKER, "MONITORING_SHOP_WIDE": "lease",
               "MONITORING_HOST_ID": "bench-web1", "MONITORING_SHOP_LEASE_SECONDS": "5"}  # fmt: skip
        with Gunicorn(Path(tmp), workers=4, **env) as app:
            for _ in range(5):
                for route in ROUTES:
                    httpx.get(app.base_url + route, timeout=10)
            app.scrape_text()  # the first scrape starts the cached collectors' readings
            holder_text = app.scrape_text()
            client.set(LEASE_KEY, "another-host", px=60_000)
            time.sleep(1.5)  # past the lease answer's memo
            other_text = app.scrape_text()
    client.delete(LEASE_KEY)
    holder, holder_families = count(holder_text)
    other, _ = count(other_text)
    print(json.dumps({
        "holder_samples": holder,
        "other_host_samples": other,
        "shop_wide_samples": holder - other,
        "bytes_per_scrape": len(holder_text),
        "largest_families": holder_families.most_common(12),
    }, indent=1))  # fmt: skip


if __name__ == "__main__":
    main()
