"""Grafana dashboards as code: catalogue.py says what each dashboard shows (PromQL over the
series the app and the monitor export), build.py renders it with grafana-foundation-sdk into
deploy/grafana/dashboards/ (`python -m monitoring.grafana`; docs/grafana.md)."""
