"""`simlab serve` under load on 127.0.0.1, beside the same searches made in-process.

    python benchmarks/bench_serve.py --requests 2000 --concurrency 8 --out BENCHMARKS.md

The demo run (`simlab demo`: examples/dense.yaml on examples/demo) is made under .bench/ if
absent, served by `simlab serve` in a process of its own, and sent `--requests` GET /search
requests per system from `--concurrency` client threads (keep-alive HTTP/1.1 connections,
stdlib `http.client`), the collection's queries in turn; it stops by itself after the last
one. The same searches then run in-process through the `RunSearcher` the service uses, one
at a time and from the same number of threads. Any non-200 answer counts as an error.
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, machine, md_table, update_section  # noqa: E402

HEADING = "simlab serve: load test on 127.0.0.1"
SYSTEMS = ("trained.flat", "bm25", "hybrid")


def demo_run(path: Path) -> Path:
    """The demo run at `path`, made first if absent (as `simlab demo` makes it)."""
    if not (path / "metrics.json").is_file():
        subprocess.run([sys.executable, "-m", "simlab", "demo", "--out", str(path)], check=True, cwd=REPO)
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(run: Path, port: int, concurrency: int) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "simlab", "serve", str(run), "--port", str(port)]
    proc = subprocess.Popen(cmd + ["--max-concurrent", str(max(16, concurrency))], cwd=REPO, start_new_session=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/health")
            if conn.getresponse().status == 200:
                return proc
        except OSError:
            time.sleep(0.3)
    proc.kill()
    sys.exit("error: simlab serve did not answer /health")


def stats(latencies: list[float], seconds: float, errors: int) -> dict:
    ms = np.asarray(latencies) * 1e3
    return {
        "n": len(latencies),
        "errors": errors,
        "qps": len(latencies) / seconds,
        "p50": float(np.percentile(ms, 50)),
        "p95": float(np.percentile(ms, 95)),
        "p99": float(np.percentile(ms, 99)),
    }


def load_test(port: int, paths: list[str], concurrency: int) -> dict:
    """Send every path once from `concurrency` threads, each on its own keep-alive connection."""
    queue = iter(paths)
    lock = threading.Lock()
    latencies: list[float] = []
    errors = [0]

    def worker() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        while True:
            with lock:
                path = next(queue, None)
            if path is None:
                break
            t0 = time.perf_counter()
            try:
                conn.request("GET", path)
                response = conn.getresponse()
                ok = response.status == 200 and json.loads(response.read())["hits"] is not None
            except (OSError, http.client.HTTPException, ValueError, KeyError):
                ok = False
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            elapsed = time.perf_counter() - t0
            with lock:
                latencies.append(elapsed)
                errors[0] += not ok
        conn.close()

    t0 = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        for f in [pool.submit(worker) for _ in range(concurrency)]:
            f.result()
    return stats(latencies, time.perf_counter() - t0, errors[0])


def in_process(searcher, queries: list[str], k: int, system: str, concurrency: int) -> dict:
    latencies: list[float] = []
    lock = threading.Lock()

    def one(query: str) -> None:
        t0 = time.perf_counter()
        searcher.search(query, k, system)
        with lock:
            latencies.append(time.perf_counter() - t0)

    t0 = time.perf_counter()
    if concurrency == 1:
        for q in queries:
            one(q)
    else:
        with ThreadPoolExecutor(concurrency) as pool:
            list(pool.map(one, queries))
    return stats(latencies, time.perf_counter() - t0, 0)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, default=REPO / ".bench" / "serve-demo")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("-k", type=int, default=10)
    parser.add_argument("--out", type=Path, default=REPO / "BENCHMARKS.md")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ["PYTHONPATH"] = str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")
    run = demo_run(args.run)
    t_start = time.perf_counter()

    from simlab.experiments.search import RunSearcher

    searcher = RunSearcher(run)
    texts = list(dict.fromkeys(searcher.collection.queries.texts))
    queries = list(itertools.islice(itertools.cycle(texts), args.requests))
    port = free_port()
    server = start_server(run, port, args.concurrency)
    rows, results = [], {}
    try:
        for system in SYSTEMS:
            paths = [f"/search?{urllib.parse.urlencode({'q': q, 'k': args.k, 'system': system})}" for q in queries]
            load_test(port, paths[: min(100, len(paths))], args.concurrency)  # warm-up, not counted
            served = load_test(port, paths, args.concurrency)
            in_process(searcher, queries[:100], args.k, system, 1)  # warm-up
            alone = in_process(searcher, queries, args.k, system, 1)
            threads = in_process(searcher, queries, args.k, system, args.concurrency)
            results[system] = {"served": served, "in_process_1": alone, "in_process_c": threads}
            c = args.concurrency
            for label, s in (
                (f"HTTP, {c} clients", served),
                ("in-process, 1 thread", alone),
                (f"in-process, {c} threads", threads),
            ):
                rows.append(
                    [
                        system,
                        label,
                        f"{s['n']:,}",
                        s["errors"],
                        f"{s['qps']:,.0f}",
                        f"{s['p50']:.2f}",
                        f"{s['p95']:.2f}",
                        f"{s['p99']:.2f}",
                    ]
                )
            rows.append(
                [
                    system,
                    "HTTP / in-process (same concurrency)",
                    "",
                    "",
                    f"{served['qps'] / threads['qps']:.2f}x",
                    f"{served['p50'] / threads['p50']:.2f}x",
                    f"{served['p95'] / threads['p95']:.2f}x",
                    f"{served['p99'] / threads['p99']:.2f}x",
                ]
            )
    finally:
        server.send_signal(signal.SIGTERM)
        code = server.wait(timeout=60)
    total_errors = sum(r["served"]["errors"] for r in results.values())
    body = f"""{__doc__.split(chr(10), 3)[3].strip()}

```
python benchmarks/bench_serve.py --requests {args.requests} --concurrency {args.concurrency} --out BENCHMARKS.md
```

Machine: {machine()}. The client threads and the server share the machine's cores. Demo run:
{len(searcher.collection.corpus)} documents, k={args.k}; `trained.flat` encodes the query with the trained
wordllama model and searches faiss flat, `bm25` is bm25s, `hybrid` runs both and fuses them (RRF).
Total run time {time.perf_counter() - t_start:.0f} s; {total_errors} errors in {len(SYSTEMS) * args.requests:,} served
requests; the server stopped on SIGTERM with exit code {code}.

{md_table(["system", "how", "requests", "errors", "QPS", "p50 ms", "p95 ms", "p99 ms"], rows)}

The last row of each system is the service's cost: HTTP QPS and latencies over those of the same
searches made in-process from the same number of threads (JSON, HTTP/1.1 and the event loop's
thread hand-off included).
"""
    update_section(args.out, HEADING, body)
    print(body)
    if total_errors or code != 0:
        sys.exit(f"error: {total_errors} errors, server exit code {code}")


if __name__ == "__main__":
    main()
