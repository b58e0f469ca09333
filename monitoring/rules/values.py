"""PromQL result values: ``Scalar(value)``, ``String(value)``, ``Sample(labels, value)``,
``Vector(samples)``, ``Series(labels, points)`` with ``points`` a list of ``(t_ms, value)``,
``Matrix(series)``; and the vector checks every operator shares: ``drop_name(labels)``,
``check_unique(samples)``/``unique_vector(samples)`` (Prometheus' "vector cannot contain
metrics with the same labelset").

Their API JSON is ``monitoring.monitor.api_json``'s; Go-compatible formatting is ``gofmt``'s.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from monitoring.rules.errors import QueryError
from monitoring.tsdb.store import Labels


@dataclass
class Scalar:
    value: float


@dataclass
class String:
    value: str


@dataclass(slots=True)
class Sample:
    labels: Labels
    value: float
    t_ms: int | None = None  # the sample's own timestamp, used by timestamp()


@dataclass
class Vector:
    samples: list[Sample] = field(default_factory=list)


@dataclass
class Series:
    labels: Labels
    points: list[tuple[int, float]] = field(default_factory=list)


@dataclass
class Matrix:
    series: list[Series] = field(default_factory=list)


Value = Scalar | String | Vector | Matrix


def drop_name(labels: Labels) -> Labels:
    # Sorted label sets usually start with __name__ (lower-case names sort after it).
    if labels and labels[0][0] == "__name__":
        return labels[1:]
    for i, (name, _) in enumerate(labels):
        if name == "__name__":
            return labels[:i] + labels[i + 1 :]
    return labels


def check_unique(samples: list[Sample]) -> None:
    seen = set()
    for s in samples:
        if s.labels in seen:
            raise QueryError("vector cannot contain metrics with the same labelset")
        seen.add(s.labels)


def unique_vector(samples: list[Sample]) -> Vector:
    check_unique(samples)
    return Vector(samples)
