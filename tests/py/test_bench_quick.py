"""The benchmark suite (scripts/bench) in its quick mode: it builds, runs every
benchmark with tiny counts and writes its report and plot. Figures from a quick
run mean nothing; this proves the harness works. Targets are never asserted
here (they are reported by a full `scripts/bench` run)."""

import os
import re
import subprocess


def test_bench_quick_mode_runs_and_reports(root, tmp_path):
    env = dict(os.environ, BENCH_OUT=str(tmp_path))
    r = subprocess.run(["scripts/bench", "--quick"], cwd=root, env=env,
                       capture_output=True, text=True, timeout=1200)
    assert r.returncode == 0, f"scripts/bench --quick failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    report = (tmp_path / "results.md").read_text()
    # Every benchmark family produced a row with a number, a baseline and a ratio.
    for row in ["zk_stat_decode", "zk_watched_event_decode", "zk_stat_properties_get", "zk_stat_format",
                "persistent", "latency"]:
        assert row in report, f"no {row!r} row in the report:\n{report}"
    assert re.search(r"\| *[0-9.]+ *(ns|M/s|us|µs)", report), report
    # Every C baseline computed what the library computes, in the program and in the
    # shared library of baselines (bench/baselines_so.c) the .so rows are also given against.
    verified = re.search(r"verified: ([^)]*)\)", report).group(1)
    assert "FAILED" not in verified and "shared_baselines ok" in verified, verified
    assert re.search(r"in a shared library \| *[0-9.]+ ns", report), report
    svg = (tmp_path / "dispatch_scale.svg").read_text()
    assert svg.lstrip().startswith("<svg") or "<svg" in svg[:200]
    assert "<polyline" in svg or "<path" in svg
