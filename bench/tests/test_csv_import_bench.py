"""bench/csv_import.py in its quick form: the real ``phones import --create-users`` into a
``serve`` the bench starts, on SQLite and PostgreSQL, with its figures and its own checks."""

from __future__ import annotations

import csv

import pytest

from bench import csv_import, seed
from tests.conftest import POSTGRES_URL
from tests.pg import fresh_postgres_database

SIZES = (40, 160)


def _assert_measured(got: dict) -> None:
    assert got["problems"] == []
    assert [r["rows"] for r in got["runs"]] == list(SIZES)
    for r in got["runs"]:
        assert r["exit_code"] == 0
        assert (r["summary"]["created"], r["summary"]["users_created"], r["summary"]["failed"]) == (r["rows"], r["rows"], 0)
        assert r["rows_per_s"] > 0 and r["rss_samples"] > 0
        assert 20 < r["peak_rss_mib"] < 1024  # a Python process with its libraries, sampled for real
    assert isinstance(got["rss_growth"], float)


def test_the_generated_file_is_a_valid_import(tmp_path):
    path = csv_import.write_csv(tmp_path / "f.csv", 3)
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["user_email"] for r in rows] == [f"u{n}@{csv_import.EMAIL_DOMAIN}" for n in range(3)]
    assert len({r["user_name"] for r in rows}) == 3


def test_quick_import_bench_on_sqlite_and_its_check_sees_a_wrong_count(tmp_path):
    lines: list[str] = []
    phase = csv_import.run_phase(tmp_path, SIZES, log=lines.append)
    _assert_measured(phase["sqlite"])
    assert phase["problems"] == [] and any("rows/s" in line for line in lines)
    report = "\n".join(csv_import.report_lines(phase))
    assert "sqlite" in report and "160 rows" in report and "peak RSS" in report

    # The check is not a formality: an account without the file's phones is reported.
    url = f"sqlite:///{tmp_path / 'import-sqlite' / 'sipphones.db'}"
    empty = seed.provision_account(url, tmp_path / "import-sqlite", "empty")
    srv = csv_import.start_serve("check", url, tmp_path / "import-sqlite", 1)
    try:
        run = csv_import.ImportRun(rows=5, seconds=1.0, peak_rss_mib=50.0, exit_code=0,
                                   summary={"created": 5, "failed": 0, "users_created": 5})
        problems = csv_import.check(run, srv, empty, 5)
    finally:
        srv.stop()
    assert problems == ["the account holds 0 phones (0 distinct), not the file's 5"]


@pytest.mark.postgres
def test_quick_import_bench_on_postgres(tmp_path):
    url, drop = fresh_postgres_database(POSTGRES_URL, "sipphones_bench_import")
    try:
        got = csv_import.measure_store("postgres", url, tmp_path / "pg", SIZES, workers=1)
    finally:
        drop()
    _assert_measured(got)
