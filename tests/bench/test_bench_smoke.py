"""``python -m bench`` in its tiny mode: every selected scenario prints its figures and ratios.

Values are never asserted (they are measurements on a shared machine); only that each row is printed
with a figure, and with a baseline and a ratio where the row has one.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from reference_server.testing import postgres_available

ROOT = Path(__file__).resolve().parents[2]
NUMBER = r"[\d.]+k?"


def _bench(*args: str) -> dict[str, list[str]]:
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--tiny", *args],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    rows: dict[str, list[str]] = {}
    for line in done.stdout.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 5 and cells[0] not in ("scenario", "---"):
            # a figure against a second baseline: "<what> | <baseline's name>"
            key = cells[1] if cells[1] not in rows else f"{cells[1]} | {cells[3].rsplit(':', 1)[0]}"
            rows[key] = cells
    return rows


def _assert_ratio(row: list[str]) -> None:
    _scenario, _what, figure, baseline, ratio = row
    assert re.match(NUMBER, figure), row
    assert re.search(rf": {NUMBER} ", baseline), row
    assert re.fullmatch(rf"{NUMBER}x?", ratio), row


def test_check_track_and_cold_import_print_figures_and_ratios() -> None:
    rows = _bench("--db", "sqlite", "--only", "check_track,cold_import")
    assert re.match(NUMBER, rows["bare endpoint"][2])
    for name in (
        "sqlite check, c4",
        "sqlite track, c4",
        "import + first check",
        "import + first check, CPU",
        "import + first check, peak RSS",
    ):
        _assert_ratio(rows[name])
    for name in (
        "import + first check, above bare",
        "import + first check, CPU above bare",
        "import + first check, peak RSS above bare",
    ):
        assert re.match(rf"-?{NUMBER} ", rows[name][2]), rows[name]


def test_unknown_scenario_is_refused() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--only", "nope"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert done.returncode == 2
    assert "unknown scenario(s) nope" in done.stderr


EVERY_ROW = {
    "keyed_track": ["{db} track, Idempotency-Key"],
    "cpu_per_request": [
        "{db} check, CPU per request",
        "{db} track, Idempotency-Key, CPU per request",
    ],
    "floors": ["{db} track, c4"],
    "aggregate": ["{db} aggregate, 300 events", "{db} check p99 during aggregates"],
    "customers_list": [
        "{db} list, 30 customers, 5 features",
        "{db} list, 10 customers, 8 features",
        "{db} list, 10 customers, 8 features | {db} the same answer, bare endpoint",
    ],
    "handler": ["handler, c4", "handler CPU per request"],
    "sdk_client": ["AsyncAutumn, 50 concurrent check", "Autumn (sync), one at a time"],
}
POSTGRES_ONLY = {
    "hot_row": ["postgres track, one customer"],
    "scale_out": ["2 processes check", "2 processes track"],
}


@pytest.mark.slow
@pytest.mark.parametrize("db", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_every_scenario_prints_figures_and_ratios(db: str) -> None:
    if db == "postgres" and not postgres_available():
        pytest.skip("PostgreSQL is not reachable on 127.0.0.1:5432")
    scenarios = {**EVERY_ROW, **(POSTGRES_ONLY if db == "postgres" else {})}
    rows = _bench("--db", db, "--only", ",".join(scenarios))
    for names in scenarios.values():
        for name in names:
            _assert_ratio(rows[name.format(db=db)])
