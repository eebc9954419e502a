"""The console benchmark (bench/console.py) in its quick mode: every page answered, every
figure printed (no timing is asserted: the figures are for reading)."""

from __future__ import annotations

import asyncio


def test_console_bench_quick(tmp_path):
    from bench import console

    report = asyncio.run(console.run(300, 2, tmp_path))
    pages = report["pages"]
    assert len(pages) == 13
    for name, m in pages.items():
        assert m["status"] == 200, name
        assert m["median_ms"] > 0 and m["ratio_to_baseline"] > 0
    text = console.table(report)
    assert "GET /console/phones?failed=1" in text and "300 phones" in text
