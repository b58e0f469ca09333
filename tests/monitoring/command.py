"""Running `manage.py monitor …` in-process, as the command tests do (much faster than a
process), capturing what it prints and its exit code."""

import contextlib
import io
from dataclasses import dataclass

from django.core.management import call_command


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


def monitor_command(*args: str) -> Result:
    out, err = io.StringIO(), io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            call_command("monitor", *args, stdout=out, stderr=err)
        except SystemExit as exc:
            code = int(exc.code or 0)
    return Result(code, out.getvalue(), err.getvalue())
