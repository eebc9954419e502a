"""bench/journal_cost.py runs end to end (its smoke mode): three real servers, wrk, the report."""

from __future__ import annotations

from bench import journal_cost


def test_the_journal_cost_bench_runs_and_reports(capsys):
    assert journal_cost.main(["--smoke", "--connections", "16"]) == 0
    out = capsys.readouterr().out
    assert "journal-on / journal-off throughput:" in out
    assert "one Journal.record of a create, in-process:" in out
    assert "journal-off 0" in out        # the journal-on side holding entries is checked by main's exit status
