"""Read one sample from the app's own exposition, as Prometheus would see it."""

from prometheus_client.parser import text_string_to_metric_families

from monitoring.metrics import exposition


def sample_value(name: str, **labels: str) -> float:
    """Sum of the samples called `name` whose labels include `labels` (0 when none)."""
    total = 0.0
    for family in text_string_to_metric_families(exposition().decode()):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total
