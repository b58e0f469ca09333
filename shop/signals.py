"""Events the shop announces. Monitoring listens; the shop knows nothing about metrics.

Each is sent after the database change is committed (services use transaction.on_commit).
"""

from django.dispatch import Signal

# kwargs: user
user_registered = Signal()
# kwargs: user (None on failure), success (bool), username (str, as typed),
#         request (the HttpRequest: client address for failed-login detection)
login_attempted = Signal()
# kwargs: order
order_placed = Signal()
# kwargs: order  (delivered)
order_completed = Signal()
# kwargs: order, reason (str)
order_failed = Signal()
# kwargs: order, units (int)  (a pending order cancelled: its reservation expired)
order_reservation_expired = Signal()
# kwargs: payment  (status succeeded or failed; error_code set on failure)
payment_finished = Signal()
# kwargs: product, stock_quantity
reorder_alert_raised = Signal()
