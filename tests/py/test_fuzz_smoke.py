"""A short run of every fuzz target (scripts/fuzz), which must find no crash;
and the regressions (scripts/fuzz --regressions, fuzz/REGRESSIONS.md):
reproducers of the library bugs the fuzzers found, all fixed.

The budget per target is ZK_FUZZ_SECONDS (default 20). Fuzzing needs the
nightly toolchain (`cargo +nightly`); without it the test is skipped, except in
CI (env CI set), where scripts/fuzz installs what is missing and the test must
run.
"""

import os
import re
import subprocess

import pytest

TARGETS = ("stat_decode", "watched_event_decode", "notification_decode", "dispatcher_script")


def nightly_available():
    try:
        r = subprocess.run(["cargo", "+nightly", "--version"], capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return r.returncode == 0


pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not os.environ.get("CI") and not nightly_available(),
                       reason="cargo +nightly unavailable (fuzzing needs it; in CI this test always runs)"),
]


def run_fuzz(root, *args, env=None, timeout):
    full_env = dict(os.environ)
    full_env.update(env or {})
    r = subprocess.run([str(root / "scripts" / "fuzz"), *args], cwd=root, capture_output=True, text=True,
                       timeout=timeout, env=full_env)
    out = r.stdout + r.stderr
    print(out[-6000:])
    return r, out


def test_fuzz_smoke(root):
    seconds = int(os.environ.get("ZK_FUZZ_SECONDS", "20"))
    # Build time (first run: cargo-fuzz install and a nightly build) plus the budget.
    r, out = run_fuzz(root, str(seconds), env={"ZK_FUZZ_SKIP_REGRESSIONS": "1"},
                      timeout=1800 + seconds * len(TARGETS) * 2)
    for target in TARGETS:
        m = re.search(rf"^{target}\s+(\d+) execs in\s+(\d+)s", r.stdout, flags=re.M)
        assert m, f"no result line for {target}:\n{out[-6000:]}"
        assert int(m.group(1)) > 0, f"{target} executed nothing"
    crashes = re.findall(r"^(\S+)\s.*CRASH", r.stdout, flags=re.M)
    assert r.returncode == 0, f"scripts/fuzz found crashes in {crashes} (exit {r.returncode}):\n{out[-6000:]}"


def test_fuzz_regressions(root):
    """The library bugs the fuzzers found (fuzz/REGRESSIONS.md) stay fixed."""
    r, out = run_fuzz(root, "--regressions", timeout=1800)
    failing = re.findall(r"FAILING: (\S+)", r.stdout)
    issues = sorted(set(re.findall(r"REGRESSION ([a-z0-9]+-[a-z0-9-]+)", out)))
    assert r.returncode == 0, (
        f"regressions failed (library bugs, see fuzz/REGRESSIONS.md): {issues}; "
        f"failing regressions: {failing}\n{out[-6000:]}"
    )
