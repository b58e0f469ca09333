"""A Celery worker writes its metrics where gunicorn's workers do, and cleans up after its
pool processes: checked in fresh interpreters, since the directory must be chosen before
prometheus_client is imported."""

import json
import os
import subprocess
import sys

from tests.gunicorn import ROOT, single_process

PROBE = """
import json, os, sys
sys.argv = {argv!r}
import config  # what `celery -A config ...` imports first
import prometheus_client.values as values
print(json.dumps({{"dir": os.environ.get("PROMETHEUS_MULTIPROC_DIR"),
                  "multiprocess": values.ValueClass.__name__ != "MutexValue"}}))
"""


def probe(tmp_path, argv):
    env = single_process({**os.environ, "VAR_DIR": str(tmp_path)})
    result = subprocess.run(
        [sys.executable, "-c", PROBE.format(argv=argv)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_a_celery_worker_uses_the_shared_metrics_directory(tmp_path):
    found = probe(tmp_path, ["celery", "-A", "config", "worker", "--concurrency", "2"])
    assert found == {"dir": str(tmp_path / "metrics"), "multiprocess": True}
    assert (tmp_path / "metrics").is_dir()


def test_other_commands_stay_single_process(tmp_path):
    assert probe(tmp_path, ["celery", "-A", "config", "beat"]) == {
        "dir": None,
        "multiprocess": False,
    }


def test_an_exiting_pool_process_drops_its_live_gauges(tmp_path):
    metrics = tmp_path / "metrics"
    metrics.mkdir()
    for name in ("gauge_livesum_4242.db", "counter_4242.db"):
        (metrics / name).write_bytes(b"\0" * 16)
    code = (
        "from celery.signals import worker_process_shutdown\n"
        "import config\n"
        "worker_process_shutdown.send(sender=None, pid=4242, exitcode=0)\n"
    )
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(metrics)}
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True, timeout=60)
    assert sorted(p.name for p in metrics.iterdir()) == ["counter_4242.db"]
