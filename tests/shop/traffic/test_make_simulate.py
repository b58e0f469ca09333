"""`make simulate` drives the shop where `make up` serves it (BIND) with the PROFILE asked for."""

import os
import shlex
import shutil
import subprocess

import pytest

from tests.gunicorn import ROOT


def _simulate_command(*make_args: str) -> list[str]:
    if not shutil.which("make"):
        pytest.skip("make is not installed")
    done = subprocess.run(
        ["make", "-n", "simulate", *make_args],
        cwd=ROOT, capture_output=True, text=True, check=True, timeout=60,
        env={k: v for k, v in os.environ.items() if k not in ("BIND", "PROFILE", "DURATION")},
    )  # fmt: skip
    line = next(
        line for line in done.stdout.replace("\\\n", " ").splitlines() if "simulate_traffic" in line
    )
    return shlex.split(line)


def _option(command: list[str], name: str) -> str:
    return command[command.index(name) + 1]


def test_make_simulate_follows_bind_and_takes_a_profile():
    default = _simulate_command()
    assert _option(default, "--base-url") == "http://127.0.0.1:8000"
    assert _option(default, "--profile") == "healthy"
    assert _option(default, "--staff-user") == "simulator"

    chosen = _simulate_command("BIND=127.0.0.1:8123", "PROFILE=payment-declines,brute-force")
    assert _option(chosen, "--base-url") == "http://127.0.0.1:8123"
    assert _option(chosen, "--profile") == "payment-declines,brute-force"
