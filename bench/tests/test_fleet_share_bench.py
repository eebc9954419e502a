"""bench/fleet_share.py end to end on a small fleet (the figures are the full run's business):
it seeds, runs one monitor then a fleet, kills one, and prints every line of its report."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_the_fleet_benchmark_runs_and_reports_its_figures():
    p = subprocess.run([sys.executable, "-m", "bench.fleet_share", "--phones", "40", "--monitors", "2",
                        "--hold", "2"], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stdout + p.stderr
    out = p.stdout
    assert re.search(r"baseline: 1 monitor bound 40 phones in [\d.]+ s; holding them [\d.]+ % of a core", out), out
    assert re.search(r"fleet: 2 monitors divided 40 phones in [\d.]+ s \(shares \[\d+, \d+\]\)", out), out
    m = re.search(r"every phone one binding again at ([\d.]+) s \(target 30 s: ratio ([\d.]+)\)", out)
    assert m and float(m.group(1)) <= 30.0, out
    m = re.search(r"longest double binding of any phone: ([\d.]+) s", out)
    assert m and float(m.group(1)) < 30.0, out
