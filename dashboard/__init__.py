"""The built-in monitoring dashboard for staff (issue 14): pages served by the shop app, charts
read from the Prometheus HTTP API (the embedded monitor's, or a real Prometheus at
PROMETHEUS_URL) through a staff-only proxy, so the browser never holds the monitoring token."""
