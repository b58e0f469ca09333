"""Quantiles (Prometheus' ``quantile.go``): ``quantile(q, values)`` for ``quantile`` and
``quantile_over_time``, ``bucket_quantile(q, buckets)`` and ``histogram_quantile(phi, vec)``
over classic ``le`` buckets."""

from __future__ import annotations

import math

from monitoring.rules.gofmt import go_float
from monitoring.rules.gomath import div
from monitoring.rules.values import Sample, Vector, drop_name, unique_vector
from monitoring.tsdb.store import Labels


def _out_of_range(q: float) -> float:
    """A quantile outside [0, 1]: NaN for NaN, -Inf below 0, +Inf above 1 (as Prometheus)."""
    return math.nan if math.isnan(q) else -math.inf if q < 0 else math.inf


def quantile(q: float, values: list[float]) -> float:
    if not values:
        return math.nan
    if not 0 <= q <= 1:
        return _out_of_range(q)
    vals = sorted(values, key=lambda v: (not math.isnan(v), v))
    n = len(vals)
    rank = q * (n - 1)
    lower = max(0, math.floor(rank))
    upper = min(n - 1, lower + 1)
    weight = rank - math.floor(rank)
    return vals[lower] * (1 - weight) + vals[upper] * weight


def bucket_quantile(q: float, buckets: list[tuple[float, float]]) -> float:
    if not 0 <= q <= 1:
        return _out_of_range(q)
    buckets = sorted(buckets, key=lambda b: b[0])
    if not math.isinf(buckets[-1][0]) or buckets[-1][0] < 0:
        return math.nan
    merged: list[list[float]] = []
    for bound, count in buckets:
        if merged and merged[-1][0] == bound:
            merged[-1][1] += count
        else:
            merged.append([bound, count])
    top = -math.inf
    for b in merged:
        if b[1] > top:
            top = b[1]
        elif b[1] < top:
            b[1] = top
    if len(merged) < 2:
        return math.nan
    observations = merged[-1][1]
    if observations == 0:
        return math.nan
    rank = q * observations
    idx = len(merged) - 1
    for i in range(len(merged) - 1):
        if merged[i][1] >= rank:
            idx = i
            break
    if idx == len(merged) - 1:
        return merged[-2][0]
    if idx == 0 and merged[0][0] <= 0:
        return merged[0][0]
    start = 0.0
    end = merged[idx][0]
    count = merged[idx][1]
    if idx > 0:
        start = merged[idx - 1][0]
        count -= merged[idx - 1][1]
        rank -= merged[idx - 1][1]
    return start + (end - start) * div(rank, count)  # 0/0: NaN, as in Go


def histogram_quantile(phi: float, vec: Vector) -> Vector:
    groups: dict[Labels, list[tuple[float, float]]] = {}
    for s in vec.samples:
        d = dict(s.labels)
        le = d.pop("le", None)
        if le is None:
            continue
        try:
            bound = go_float(le)
        except ValueError:
            continue
        groups.setdefault(tuple(sorted(d.items())), []).append((bound, s.value))
    out = [Sample(drop_name(key), bucket_quantile(phi, buckets)) for key, buckets in groups.items()]
    return unique_vector(out)
