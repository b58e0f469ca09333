"""Aggregation operators (``sum``, ``avg``, ``topk``, ``count_values``, …): ``aggregate_vector``
groups an evaluated vector as ``by``/``without`` say and folds each group, summing in the
order Prometheus sums (series in creation order) so results agree to the last bit."""

from __future__ import annotations

import heapq
import math

from monitoring.rules.errors import UnsupportedError
from monitoring.rules.expr import Agg
from monitoring.rules.gofmt import format_value
from monitoring.rules.quantile import quantile
from monitoring.rules.values import Sample, Vector
from monitoring.tsdb.store import Labels


def keeps_infinite_mean(mean: float, v: float) -> bool:
    """An infinite running mean stays as it is on ``v`` (Prometheus skips the update): the
    same infinity again, or a finite value; NaN or the other infinity changes it."""
    if math.isinf(v):
        return (mean > 0) == (v > 0)
    return not math.isnan(v)


def aggregate(op: str, values: list[float], param) -> float:
    if op == "sum":
        total = 0.0
        for v in values:
            total += v
        return total
    if op == "count":
        return float(len(values))
    if op == "group":
        return 1.0
    if op == "min":
        result = values[0]
        for v in values[1:]:
            if result > v or math.isnan(result):
                result = v
        return result
    if op == "max":
        result = values[0]
        for v in values[1:]:
            if result < v or math.isnan(result):
                result = v
        return result
    if op == "avg":
        mean = values[0]
        count = 1
        for v in values[1:]:
            count += 1
            if math.isinf(mean) and keeps_infinite_mean(mean, v):
                continue
            mean += v / count - mean / count
        return mean
    if op in ("stddev", "stdvar"):
        # Started from the first value, as Prometheus does (a lone Inf has variance 0).
        count = 1
        mean, var = values[0], 0.0
        for v in values[1:]:
            count += 1
            delta = v - mean
            mean += delta / count
            var += delta * (v - mean)
        var /= count
        return math.sqrt(var) if op == "stddev" else var
    if op == "quantile":
        return quantile(param, values)
    if op == "count_values":
        return float(len(values))
    raise UnsupportedError(f"aggregation {op}")


def _topk(op: str, k: float, members: list[Sample]) -> list[Sample]:
    if math.isnan(k) or k < 1:
        return []
    n = min(int(k), len(members))

    # NaN ranks lowest for topk and for bottomk, as in Prometheus.
    def rank(s: Sample) -> float:
        return -math.inf if math.isnan(s.value) else s.value

    if op == "topk":
        chosen = heapq.nlargest(n, members, key=rank)
    else:
        chosen = heapq.nsmallest(
            n, members, key=lambda s: math.inf if math.isnan(s.value) else s.value
        )
    return [Sample(s.labels, s.value) for s in chosen]


def aggregate_vector(node: Agg, vec: Vector, param: float | str | None) -> Vector:
    """``node``'s aggregation of the evaluated ``vec``; ``param`` is topk/bottomk's k,
    quantile's q or count_values' label name (already checked)."""
    op = node.op
    grouping = node.grouping
    groups: dict[Labels, list[Sample]] = {}
    if op == "count_values" and not node.without:
        grouping = [*grouping, param]
    for s in vec.samples:
        labels = s.labels
        if op == "count_values":
            # The value label is set first, so `without` can drop it again, as in Prometheus.
            d = dict(labels)
            d[param] = format_value(s.value)
            labels = tuple(sorted(d.items()))
        if node.without:
            key = tuple(p for p in labels if p[0] not in grouping and p[0] != "__name__")
        else:
            key = tuple(p for p in labels if p[0] in grouping)
        groups.setdefault(key, []).append(s)
    out: list[Sample] = []
    for key, members in groups.items():
        values = [s.value for s in members]
        if op in ("topk", "bottomk"):
            out.extend(_topk(op, param, members))
            continue
        out.append(Sample(key, aggregate(op, values, param)))
    return Vector(out)
