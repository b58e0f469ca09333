"""Real-user monitoring: the storefront beacon's endpoint (/api/rum/).

- ``beacon_parse(data) -> Beacon`` validates one beacon (``BeaconInvalid`` with the reason).
- ``beacon_record(beacon)`` adds it to the per-page histograms (``monitoring.rum.metrics``).
- ``RateLimiter`` bounds beacons per client address.
"""

from monitoring.rum.beacon import Beacon, BeaconInvalid, beacon_parse
from monitoring.rum.metrics import PAGES, beacon_record
from monitoring.rum.ratelimit import RateLimiter

__all__ = ["PAGES", "Beacon", "BeaconInvalid", "RateLimiter", "beacon_parse", "beacon_record"]
