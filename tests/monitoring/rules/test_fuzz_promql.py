"""The differential fuzzer as a guard: random promtool-format rule tests (series, expressions,
alerts with templates and keep_firing_for, test-file shapes with fields left out, malformed
series values) give byte-identical reports under promtool 2.42 and our runner.
Run it by hand for more seeds: python -m tests.monitoring.rules.fuzz_promql --seed 1 --seeds 20"""

import pytest

from tests.monitoring.rules.fuzz_promql import fuzz
from tests.services import require_prometheus


@pytest.mark.prometheus
@pytest.mark.parametrize("seed", [1, 7, 13, 15])
def test_random_rule_tests_agree_with_promtool(seed):
    require_prometheus()
    found = [d for d in fuzz(seed, 120) if d.real]
    report = "\n\n".join(
        f"{d.file.name} ({kind})\nours:\n{mine}\npromtool:\n{other}"
        for d in found
        for kind, mine, other in d.blocks
    )
    assert not found, report
