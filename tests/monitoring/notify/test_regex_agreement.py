"""Regex matchers read as Go's RE2 reads them: one file with a route per pattern, one amtool
call per value, and the routes each value takes compared with ours."""

import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from monitoring.configfile import ConfigError
from monitoring.notify.config import config_load
from monitoring.notify.matchers import MatcherError, go_regex
from monitoring.notify.routing import Route
from tests.monitoring.notify.test_amtool_agreement import as_args
from tests.services import require_alertmanager

PATTERNS = [
    "(?i)brute.*",
    "a(?i)b|c",
    "(x(?i)y|w)z",
    "[[:alpha:]]+",
    "[^[:digit:]x]+",
    "[[:punct:]]",
    "\\Q.*\\E",
    "[]a]+",
    "\\d+",
    "\\w+",
    "\\s",
    ".",
    "(?s).",
    "x.y",
    "ab|cd",
    "(a|b)*c",
    "a{2,3}",
    "[a-c]{2}",
    "a\\.b",
    "",
    ".*",
    "ü.",
    "(?i)ü.",
    "a\\z",
    "\\bab\\b.*",
    "a\\B.*",
    "[\\d\\s]+",
    "[\\W]+",
    "\\S\\D",
    "[[]+",
    "[a&&b~~|]+",
]
VALUES = [
    "", "a", "A", "BruteForce", "brute", "ab", "aB", "c", "C", "B", "abc", "123", "١٢٣",
    "x.y", "x\ny", ".*", "ü1", "Ü1", " ", "\t", "\u00a0", "aa", "aaa", "aaaa", "cd", "ababc", "]",
    "a.b", "axb", "xYz", "xyz", "wz", "WZ", "!", "a]a", "x", "\n", "ab cd", "abü", "ab.c",
    "a1", "1 \t2", "ü\u00a0", "a\x0b", "[[", "a&~|", "&&",
]  # fmt: skip


def write_config(path: Path, patterns: list[str]) -> None:
    lines = ["route:", "  receiver: none", "  routes:"]
    for i, pattern in enumerate(patterns):
        matcher = 'v=~"' + pattern.replace("\\", "\\\\").replace('"', '\\"') + '"'
        lines += [f"    - matchers: ['{matcher}']", f"      receiver: p{i}", "      continue: true"]
    lines += ["receivers:", "  - name: none"] + [f"  - name: p{i}" for i in range(len(patterns))]
    path.write_text("\n".join(lines) + "\n")


def test_regexes_match_as_in_alertmanager(tmp_path: Path) -> None:
    require_alertmanager()
    path = tmp_path / "regex.yml"
    write_config(path, PATTERNS)
    check = subprocess.run(["amtool", "check-config", str(path)], capture_output=True, timeout=120)
    assert check.returncode == 0, check.stdout
    route = Route.build(config_load(path, env={}).route)

    def amtool(value: str) -> str:
        args = ["amtool", "config", "routes", "test", f"--config.file={path}", "--"]
        done = subprocess.run(
            args + as_args({"v": value}), capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    with ThreadPoolExecutor(max_workers=4) as pool:
        expected = list(pool.map(amtool, VALUES))
    wrong = []
    for value, want in zip(VALUES, expected, strict=True):
        got = ",".join(route.receivers({"v": value}))
        if got != want:
            names = lambda s: [PATTERNS[int(r[1:])] for r in s.split(",") if r != "none"]  # noqa: E731
            wrong.append(f"{value!r}: amtool {names(want)}, ours {names(got)}")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("pattern", ["(?=a)", "(?!a)b", "a*+", "(a)\\1", "(?>a)", "a++"])
def test_what_re2_refuses_is_refused(tmp_path: Path, pattern: str) -> None:
    require_alertmanager()
    path = tmp_path / "regex.yml"
    write_config(path, [pattern])
    check = subprocess.run(["amtool", "check-config", str(path)], capture_output=True, timeout=120)
    assert check.returncode != 0
    with pytest.raises(ConfigError, match="error parsing regexp"):
        config_load(path, env={})


@pytest.mark.parametrize("pattern", ["\\pL", "\\p{Greek}", "(?U)a+"])
def test_re2_features_the_notifier_does_not_support(pattern: str) -> None:
    with pytest.raises(MatcherError, match="not supported by the notifier"):
        go_regex(pattern)
