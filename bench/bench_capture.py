"""Data capture overhead (issue 33): the endpoint's latency with capture on vs off, and the capture buffer's memory.

Two real backends (``mlops_provider.runtime.backend``) serve the same small scikit-learn pyfunc model, one with
capture (``fraction 1.0``, the default flush settings: every row captured and flushed to parquet under a temporary
``MLOPS_HOME``), one without. ``mlops replay``'s client (``runtime/traffic.py``) sends the same open-loop traffic
(``--rate`` req/s, ``--batch`` rows a request) to each, alternated ``--repeats`` times; p50/p99 of client-side
latency and the difference per pair of runs, and the p99 of all runs pooled per side with a 95% block-bootstrap
interval (the per-run p99 of a few thousand requests moves by tens of percent between runs on this machine, capture
or not: the pooled figure and its interval say what the goal can be judged on). Then the buffer's memory: the
resident size of the capturing backend before and after its buffer holds ``--buffer-rows`` rows (flushes held back
by a long ``flush_seconds`` and a large ``flush_rows``).

Before the HTTP runs, a deterministic probe of the mechanism, in process (no client, no server, so the machine's
load moves it much less than a p99): the request path's cost (the backend's ``_capture`` of a one-row request, the
append under the lock), then ``--probe-flushes`` flushes of ``--probe-rows`` waiting rows (``--probe-width`` float
columns, typed as a model signature says), each while a ticker thread sleeps 1 ms in a loop, as the event loop of a
serving backend waits on its sockets: the flush's wall and CPU time, the ticker's longest stall during the flush
(what a request arriving then waits at most) and its blocked share (the ticker's lost time / the flush's wall time:
the share of the flush during which no other Python thread ran), beside the same ticker with no flush.

The HTTP runs alternate which backend goes first (off-on, on-off, ...), so neither always runs on a warmer machine.

Prints one JSON object per run and a markdown table at the end. Never asserts a time.
Usage: python bench/bench_capture.py [--rate 200] [--requests 4000] [--repeats 3] [--probe-only]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import model_dir  # noqa: E402


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def probe_writer(columns: list[str]) -> tuple[object, object]:
    """A capture writer typed as the backend types it (every column a ``double``) and its settings; no thread, no
    automatic flush. The writer before this bench's probe took a pandas ``typer``; it is built that way when it
    does not know ``kinds`` (the A/B of the probe runs this script on both)."""
    import pandas as pd

    from mlops_provider.ml.capture import CaptureSettings
    from mlops_provider.runtime.capture import CaptureWriter

    settings = CaptureSettings(flush_rows=10_000_000, flush_seconds=3600.0, buffer_rows=10_000_000)
    kinds = dict.fromkeys(columns, "double")
    try:
        return CaptureWriter("bench_probe", "1", settings, kinds=kinds), settings  # type: ignore[call-arg]
    except TypeError:

        def typer(names: list[str], rows: list[list[float]]) -> pd.DataFrame:  # the backend's frame_of before
            frame = pd.DataFrame(rows, columns=names)
            for name in names:
                frame[name] = pd.to_numeric(frame[name], errors="coerce").astype("float64")
            return frame

        return CaptureWriter("bench_probe", "1", settings, typer=typer), settings  # type: ignore[call-arg]


def ticker_gaps(stop: threading.Event, ticks: list[tuple[float, float]]) -> None:
    """Sleep 1 ms in a loop; record (wake-up time, time since the previous wake-up)."""
    last = time.perf_counter()
    while not stop.is_set():
        time.sleep(0.001)
        now = time.perf_counter()
        ticks.append((now, now - last))
        last = now


def stall_of(ticks: list[tuple[float, float]], start: float, end: float) -> tuple[float, float]:
    """The longest gap of the ticks that waited through [start, end] and the time lost beyond 1.1 ms a tick."""
    inside = [gap for at, gap in ticks if at >= start and at - gap <= end]
    if not inside:
        return end - start, end - start
    return max(inside), sum(max(0.0, gap - 0.0011) for gap in inside)


def probe(rows_per_flush: int, width: int, flushes: int) -> dict:
    """The probe described in the module's docstring; medians over ``flushes``."""
    from mlops_provider.runtime.backend import _capture

    columns = [f"f{i}" for i in range(width)]
    writer, settings = probe_writer(columns)
    request = [[i / 7 + j for j in range(width)] for i in range(rows_per_flush)]
    n = rows_per_flush
    started, cpu = time.perf_counter(), time.thread_time()
    for i in range(n):
        _capture(writer, settings, columns, [request[i]], [0.5], f"req{i:08d}", None)
    append_us = (time.perf_counter() - started) / n * 1e6
    append_cpu_us = (time.thread_time() - cpu) / n * 1e6
    writer.flush()  # the first flush pays one-off costs (imports, the folder)
    walls, cpus, stalls, shares, idle_stalls, idle_shares = [], [], [], [], [], []
    for repeat in range(flushes):
        for i in range(n):
            _capture(writer, settings, columns, [request[i]], [0.5], f"req{repeat}-{i:08d}", None)
        ticks: list[tuple[float, float]] = []
        stop = threading.Event()
        tick = threading.Thread(target=ticker_gaps, args=(stop, ticks), daemon=True)
        tick.start()
        time.sleep(0.2)
        out: dict[str, float] = {}

        def flush(out: dict[str, float] = out) -> None:
            cpu = time.thread_time()
            out["start"] = time.perf_counter()
            out["rows"] = writer.flush()
            out["end"] = time.perf_counter()
            out["cpu"] = time.thread_time() - cpu

        # the same ticker with no flush, just before: the machine's own stalls
        idle_end = time.perf_counter()
        worker = threading.Thread(target=flush, daemon=True)
        worker.start()
        worker.join()
        time.sleep(0.05)
        stop.set()
        tick.join()
        wall = out["end"] - out["start"]
        stall, lost = stall_of(ticks, out["start"], out["end"])
        window = min(max(wall, 0.05), 0.15)
        idle, idle_lost = stall_of(ticks, idle_end - window, idle_end - 0.001)
        walls.append(wall * 1e3)
        cpus.append(out["cpu"] * 1e3)
        stalls.append(stall * 1e3)
        shares.append(100 * lost / wall)
        idle_stalls.append(idle * 1e3)
        idle_shares.append(100 * idle_lost / window)
        assert out["rows"] == n, out  # a probe that wrote nothing measures nothing
    med = statistics.median
    return {"rows": n, "width": width, "flushes": flushes, "append_us": round(append_us, 2),
            "append_cpu_us": round(append_cpu_us, 2),
            "flush_wall_ms": round(med(walls), 2), "flush_cpu_ms": round(med(cpus), 2),
            "stall_max_ms": round(med(stalls), 2), "stall_max_ms_worst": round(max(stalls), 2),
            "blocked_share_pct": round(med(shares), 1),
            "idle_stall_max_ms": round(med(idle_stalls), 2), "idle_blocked_share_pct": round(med(idle_shares), 1),
            "loadavg": Path("/proc/loadavg").read_text().split()[0]}  # fmt: skip


def percentile(values: list[float], q: float) -> float:
    import numpy as np

    return float(np.percentile(values, q))


def pooled_p99_ratio(on: list[list[float]], off: list[list[float]], block: int = 200, draws: int = 2000,
                     seed: int = 0) -> tuple[float, float, float]:  # fmt: skip
    """The p99 of every ``on`` request against every ``off`` request (each side's runs pooled), in percent, with a
    95% interval from a block bootstrap: each run's latencies in their order cut into blocks of ``block`` requests
    (a burst of load slows neighbouring requests together, so single requests are not independent), blocks drawn
    with replacement per side. Returns (low, pooled, high)."""
    import numpy as np

    def blocks(runs: list[list[float]]) -> list[np.ndarray]:
        return [np.asarray(r[i : i + block]) for r in runs for i in range(0, len(r), block) if r[i : i + block]]

    a, b = blocks(on), blocks(off)
    rng = np.random.default_rng(seed)
    ratios = []
    for _ in range(draws):
        x = np.concatenate([a[i] for i in rng.integers(0, len(a), len(a))])
        y = np.concatenate([b[i] for i in rng.integers(0, len(b), len(b))])
        ratios.append(np.percentile(x, 99) / np.percentile(y, 99) - 1)
    pooled = np.percentile(np.concatenate(a), 99) / np.percentile(np.concatenate(b), 99) - 1
    low, high = np.percentile(ratios, [2.5, 97.5])
    return 100 * float(low), 100 * float(pooled), 100 * float(high)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--requests", type=int, default=4000, help="requests per run")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--buffer-rows", type=int, default=100_000)
    parser.add_argument("--probe-rows", type=int, default=5_000, help="rows a probed flush writes")
    parser.add_argument("--probe-width", type=int, nargs="+", default=[2, 13], help="columns of the probed rows")
    parser.add_argument("--probe-flushes", type=int, default=7)
    parser.add_argument("--probe-only", action="store_true", help="only the in-process probe")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-capture-") as tmp:
        os.environ["MLOPS_HOME"] = str(Path(tmp) / "home")
        from mlops_provider.runtime.backend import BackendProcess
        from mlops_provider.runtime.capture import read_day
        from mlops_provider.runtime.traffic import replay

        results: list[dict] = []
        for width in args.probe_width:
            found = probe(args.probe_rows, width, args.probe_flushes)
            print(json.dumps({"probe": found}), flush=True)
            results.append(
                {
                    "what": f"flush of {found['rows']} rows x {width} columns: ticker's longest stall (ms)",
                    "median": found["stall_max_ms"],
                    **{k: v for k, v in found.items() if k != "stall_max_ms"},
                }
            )
        if args.probe_only:
            print_table(results)
            return 0
        folder = model_dir(Path(tmp))
        capture = {"fraction": 1.0, "flush_rows": 5000, "flush_seconds": 10.0, "buffer_rows": 100_000}
        backends = {
            "off": BackendProcess("bench_off", "1", free_port(), folder, Path(tmp) / "off.log"),
            "on": BackendProcess("bench_on", "1", free_port(), folder, Path(tmp) / "on.log", capture=capture),
        }
        rows = [[round(i / 100, 2), round(1 - i / 100, 2)] for i in range(200)]
        try:
            for backend in backends.values():
                backend.start(timeout=300)

            def run(name: str, count: int) -> dict:
                url = backends[name].url + "/invocations"
                summary = replay(url, ["a", "b"], rows, rate=args.rate, count=count, batch=args.batch,
                                 duration=count / args.rate + 60, concurrency=8)  # fmt: skip
                return {**summary.as_dict(), "latencies_ms": summary.latencies_ms}

            for name in backends:  # warm both
                run(name, 400)
            p50s: dict[str, list[float]] = {"off": [], "on": []}
            p99s: dict[str, list[float]] = {"off": [], "on": []}
            pooled: dict[str, list[list[float]]] = {"off": [], "on": []}
            for repeat in range(args.repeats):
                for name in ("off", "on") if repeat % 2 == 0 else ("on", "off"):
                    out = run(name, args.requests)
                    pooled[name].append(out.pop("latencies_ms"))
                    p50s[name].append(out["p50_ms"])
                    p99s[name].append(out["p99_ms"])
                    load = Path("/proc/loadavg").read_text().split()[0]
                    print(json.dumps({"capture": name, "repeat": repeat, "loadavg": load, **out}), flush=True)
            ratio99 = [on / off - 1 for on, off in zip(p99s["on"], p99s["off"], strict=True)]
            results.append({"what": f"capture overhead at {args.rate:.0f} req/s, p99 (percent)",
                            "median": 100 * statistics.median(ratio99), "runs": [100 * r for r in ratio99],
                            "off_p99_ms": p99s["off"], "on_p99_ms": p99s["on"]})  # fmt: skip
            low, mid, high = pooled_p99_ratio(pooled["on"], pooled["off"])
            results.append({"what": f"capture overhead at {args.rate:.0f} req/s, p99 of all runs pooled (percent)",
                            "median": mid, "ci95": [low, high], "requests": [sum(map(len, pooled[k])) for k in pooled],
                            "off_p99_ms": percentile(sum(pooled["off"], []), 99),
                            "on_p99_ms": percentile(sum(pooled["on"], []), 99)})  # fmt: skip
            results.append({"what": f"capture overhead at {args.rate:.0f} req/s, p50 added (ms)",
                            "median": statistics.median(a - b for a, b in zip(p50s["on"], p50s["off"], strict=True)),
                            "off_p50_ms": p50s["off"], "on_p50_ms": p50s["on"]})  # fmt: skip
            backends["on"].stop()
            day = time.strftime("%Y-%m-%d", time.gmtime())
            frame, files = read_day("bench_on", day)
            results.append({"what": "rows captured / files (all runs)", "median": float(len(frame)),
                            "files": len(files)})  # fmt: skip

            held = {"fraction": 1.0, "flush_rows": args.buffer_rows, "flush_seconds": 3600.0,
                    "buffer_rows": args.buffer_rows}  # fmt: skip
            memory = BackendProcess("bench_mem", "1", free_port(), folder, Path(tmp) / "mem.log", capture=held)
            backends["mem"] = memory
            memory.start(timeout=300)
            replay(memory.url + "/invocations", ["a", "b"], rows, rate=400, count=200, duration=60, batch=100)
            before = rss_mb(memory.pid or 0)
            count = (args.buffer_rows - 20_000) // 100
            replay(memory.url + "/invocations", ["a", "b"], rows, rate=400, count=count, duration=600, batch=100)
            after = rss_mb(memory.pid or 0)
            buffered = 20_000 + count * 100
            results.append({"what": f"capture buffer memory, {buffered} rows of 2 columns (MB)",
                            "median": after - before, "rss_before_mb": round(before, 1),
                            "rss_after_mb": round(after, 1)})  # fmt: skip
        finally:
            for backend in backends.values():
                backend.stop()
    print_table(results)
    return 0


def print_table(results: list[dict]) -> None:
    print("\n| what | value | detail |\n|---|---|---|")
    for row in results:
        detail = ", ".join(f"{k} {v if not isinstance(v, list) else [round(x, 2) for x in v]}" for k, v in row.items()
                           if k not in ("what", "median"))  # fmt: skip
        print(f"| {row['what']} | {row['median']:.2f} | {detail} |")


if __name__ == "__main__":
    sys.exit(main())
