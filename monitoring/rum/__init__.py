"""Real-user monitoring: the storefront beacon's endpoint (/api/rum/).

- ``beacon_parse(data) -> Beacon`` validates one beacon (``BeaconInvalid`` with the reason).
- ``beacon_record(beacon)`` adds it to the per-page histograms (``monitoring.rum.metrics``).
- ``views.rum_beacon`` bounds beacons per client address with the security rate limit's
  shared counts (``security.windows``).
"""

from monitoring.rum.beacon import Beacon, BeaconInvalid, beacon_parse
from monitoring.rum.metrics import PAGES, beacon_record

__all__ = ["PAGES", "Beacon", "BeaconInvalid", "beacon_parse", "beacon_record"]
