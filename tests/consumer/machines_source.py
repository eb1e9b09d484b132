"""A source table the repository's demo has never seen, for the "Adopt in your Airflow" test: sensor readings of
machines with a failure label (SQLite, standard library only). The label depends on the readings, so a model learns
something; a reading is late or missing now and then, as in a real feed."""

from __future__ import annotations

import datetime as dt
import math
import random
import sqlite3
from pathlib import Path

SITES = ("north", "south", "east")


def write_source(path: Path, first_day: dt.date, days: int, rows_per_day: int = 400, seed: int = 7) -> None:
    rng = random.Random(seed)
    con = sqlite3.connect(path)
    con.execute(
        "CREATE TABLE sensor_readings (reading_id INTEGER PRIMARY KEY, machine_id INTEGER, reading_ts TIMESTAMP, "
        "temperature REAL, vibration REAL, pressure REAL, load_pct INTEGER, site TEXT, failed INTEGER)"
    )
    rows = []
    for offset in range(days):
        day = dt.datetime.combine(first_day + dt.timedelta(days=offset), dt.time())
        for _ in range(rows_per_day):
            temperature = rng.gauss(70, 8)
            vibration = abs(rng.gauss(3, 1.2))
            pressure = rng.gauss(30, 4) if rng.random() > 0.01 else None
            load = rng.randint(10, 100)
            site = rng.choice(SITES)
            score = (
                0.09 * (temperature - 70) + 0.8 * (vibration - 3) + 0.02 * (load - 55) + (0.4 if site == "east" else 0)
            )
            failed = int(rng.random() < 1 / (1 + math.exp(-(score - 1.2))))
            ts = day + dt.timedelta(seconds=rng.randint(0, 86_399))
            rows.append((rng.randint(1, 5_000), ts.isoformat(sep=" "), temperature, vibration, pressure, load, site,
                         failed))  # fmt: skip
    con.executemany(
        "INSERT INTO sensor_readings (machine_id, reading_ts, temperature, vibration, pressure, load_pct, site, failed)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        rows,
    )
    con.commit()
    con.close()
