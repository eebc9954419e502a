"""Runs the atheris fuzz target for a bounded number of inputs: any non-ParseError is a failure."""

import subprocess
import sys
from pathlib import Path

TARGET = Path(__file__).resolve().parents[2] / "fuzz" / "fuzz_sip_parser.py"


def test_fuzz_target_runs_clean(tmp_path):
    corpus = tmp_path / "corpus"
    subprocess.run([sys.executable, str(TARGET), "--write-seeds", str(corpus)], check=True, timeout=60)
    assert len(list(corpus.iterdir())) >= 4
    proc = subprocess.run(
        [sys.executable, str(TARGET), str(corpus), "-runs=20000", "-seed=1", f"-artifact_prefix={tmp_path}/"],
        cwd=tmp_path, capture_output=True, text=True, timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "Done 20000 runs" in proc.stderr
    assert not list(tmp_path.glob("crash-*"))
