"""A few seconds of each benchmark, so they cannot rot (figures: docs/benchmarks.md).

Benchmarks are not timed tests: these check that each one runs end to end with wrk, every
request answered 2xx, and prints its ratio."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import BACKEND, PG_URL

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _bench_template(pristine, monkeypatch):
    """Each run's databases start as copies of the suite's migrated one (bench/checkin.py
    TEMPLATE): the runs are about measuring, and a migration from empty is 6 s of CPU."""
    monkeypatch.setenv("TORREYA_BENCH_TEMPLATE", pristine)


def _bench(*args: str) -> subprocess.CompletedProcess:
    if shutil.which("wrk") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("wrk is missing (apt-get install wrk)")
        pytest.skip("wrk is not installed (apt-get install wrk)")
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)


def test_checkin_benchmark_runs():
    result = _bench("bench/checkin.py", "--db", BACKEND, "--pg-url", PG_URL, "--seconds", "1",
                    "--residents", "400", "--rounds", "2",
                    "--connections", "16")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ratio check-in / bare INSERT" in result.stdout
    assert "bare JSON (uvloop, httptools)" in result.stdout
    assert "ratio check-in / bare JSON, median of 2 rounds" in result.stdout
    assert "offline sync: 400 of 400 scans credited" in result.stdout
    assert "ms per synced scan" in result.stdout and "ms per check-in" in result.stdout
    assert "of it Torreya's processes" in result.stdout


def test_burst_benchmark_runs():
    result = _bench("bench/burst.py", "--db", BACKEND, "--pg-url", PG_URL, "--residents",
                    "120", "--spread", "2", "--rush-connections", "20",
                    "--spread-connections", "10", "--rush-seconds", "3")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "120 of 120 scans answered 2xx" in result.stdout
    assert "ledger audit clean" in result.stdout


@pytest.mark.postgres_only
def test_boards_benchmark_runs():
    result = _bench("bench/boards.py", "--pg-url", PG_URL, "--residents", "24000", "--entries",
                    "30000", "--seconds", "2", "--checkins", "6000", "--rounds", "2")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ratio leaderboard / bare JSON" in result.stdout
    assert "ratio village board / bare JSON: residents" in result.stdout
    assert "check-in p99, median of 2 rounds" in result.stdout


@pytest.mark.postgres_only
def test_statement_benchmark_runs():
    result = _bench("bench/statement.py", "--pg-url", PG_URL, "--residents", "100",
                    "--batches", "5", "--warm", "1", "--b-sql",
                    "ALTER TABLE earning_totals SET (fillfactor = 60)")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "A (as migrated):" in result.stdout and "B / A:" in result.stdout


def test_webhook_delivery_benchmark_runs():
    result = _bench("bench/webhooks.py", "--db", BACKEND, "--pg-url", PG_URL, "--messages",
                    "600", "--seconds", "1", "--workers", "2", "--checkin-seconds", "1")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "deliveries/s" in result.stdout and "not delivered: 0" in result.stdout
    assert "2 worker process(es)" in result.stdout
    assert "ratio deliveries / check-ins" in result.stdout


def test_observation_cost_benchmark_runs():
    result = _bench("bench/observe.py", "--db", BACKEND, "--pg-url", PG_URL, "--seconds", "1",
                    "--residents", "300", "--rounds", "2", "--connections", "16",
                    "--rate-cap", "4000")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "observed / unobserved, median of 2 rounds" in result.stdout
