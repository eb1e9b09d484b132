"""Data capture overhead (issue 33): the endpoint's latency with capture on vs off, and the capture buffer's memory.

Two real backends (``mlops_provider.runtime.backend``) serve the same small scikit-learn pyfunc model, one with
capture (``fraction 1.0``, the default flush settings: every row captured and flushed to parquet under a temporary
``MLOPS_HOME``), one without. ``mlops replay``'s client (``runtime/traffic.py``) sends the same open-loop traffic
(``--rate`` req/s, ``--batch`` rows a request) to each, alternated ``--repeats`` times; p50/p99 of client-side
latency and the difference. Then the buffer's memory: the resident size of the capturing backend before and after
its buffer holds ``--buffer-rows`` rows (flushes held back by a long ``flush_seconds`` and a large ``flush_rows``).

Prints one JSON object per run and a markdown table at the end. Never asserts a time.
Usage: python bench/bench_capture.py [--rate 200] [--requests 4000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import sys
import tempfile
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--requests", type=int, default=4000, help="requests per run")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--buffer-rows", type=int, default=100_000)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-capture-") as tmp:
        os.environ["MLOPS_HOME"] = str(Path(tmp) / "home")
        from mlops_provider.runtime.backend import BackendProcess
        from mlops_provider.runtime.capture import read_day
        from mlops_provider.runtime.traffic import replay

        folder = model_dir(Path(tmp))
        capture = {"fraction": 1.0, "flush_rows": 5000, "flush_seconds": 10.0, "buffer_rows": 100_000}
        backends = {
            "off": BackendProcess("bench_off", "1", free_port(), folder, Path(tmp) / "off.log"),
            "on": BackendProcess("bench_on", "1", free_port(), folder, Path(tmp) / "on.log", capture=capture),
        }
        rows = [[round(i / 100, 2), round(1 - i / 100, 2)] for i in range(200)]
        results: list[dict] = []
        try:
            for backend in backends.values():
                backend.start(timeout=300)

            def run(name: str, count: int) -> dict:
                url = backends[name].url + "/invocations"
                summary = replay(url, ["a", "b"], rows, rate=args.rate, count=count, batch=args.batch,
                                 duration=count / args.rate + 60, concurrency=8)  # fmt: skip
                return summary.as_dict()

            for name in backends:  # warm both
                run(name, 400)
            p50s: dict[str, list[float]] = {"off": [], "on": []}
            p99s: dict[str, list[float]] = {"off": [], "on": []}
            for _ in range(args.repeats):
                for name in ("off", "on"):
                    out = run(name, args.requests)
                    p50s[name].append(out["p50_ms"])
                    p99s[name].append(out["p99_ms"])
                    print(json.dumps({"capture": name, **out}), flush=True)
            ratio99 = [on / off - 1 for on, off in zip(p99s["on"], p99s["off"], strict=True)]
            results.append({"what": f"capture overhead at {args.rate:.0f} req/s, p99 (percent)",
                            "median": 100 * statistics.median(ratio99), "runs": [100 * r for r in ratio99],
                            "off_p99_ms": p99s["off"], "on_p99_ms": p99s["on"]})  # fmt: skip
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
    print("\n| what | value | detail |\n|---|---|---|")
    for row in results:
        detail = ", ".join(f"{k} {v if not isinstance(v, list) else [round(x, 2) for x in v]}" for k, v in row.items()
                           if k not in ("what", "median"))  # fmt: skip
        print(f"| {row['what']} | {row['median']:.2f} | {detail} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
