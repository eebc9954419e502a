"""bench/emulator_reset.py runs end to end (its smoke mode): a real emulator, every operation, the report."""

from __future__ import annotations

from bench import emulator_reset


def test_the_emulator_reset_bench_runs_and_reports(capsys):
    emulator_reset.main(["--smoke"])  # the verdict depends on the machine's load: not asserted here
    out = capsys.readouterr().out
    for name in ("health", "fresh account", "reset account", "reset all", "per-test cycle", "CLI set-up"):
        assert f"\n{name} " in out or out.startswith(name), name
    assert "x  1.0 health" in out and "verdict: " in out
