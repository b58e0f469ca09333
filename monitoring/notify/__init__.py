"""The notifier: Alertmanager's job inside the monitor (configuration, routing, stages, channels)."""
