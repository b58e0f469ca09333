import importlib.util
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "bench_logging.py"


def test_the_logging_benchmark_runs_both_paths_and_reports_the_ratio():
    spec = importlib.util.spec_from_file_location("bench_logging", BENCH)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    result = bench.run(records=300, rounds=1)
    assert result["plain_us"] > 0 and result["ours_us"] > 0
    assert result["ratio"] == result["ours_us"] / result["plain_us"]
    assert "python-json-logger" in bench.report(result)
