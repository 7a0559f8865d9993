"""Run every benchmark in one process order and rewrite BENCHMARKS.md (`make bench`).

    python benchmarks/run_all.py --data ../shared/data --out BENCHMARKS.md

Each benchmark replaces its own `## ...` section, so a single benchmark can also be rerun
alone with the command shown in its section.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_definitions  # noqa: E402
import bench_dense_search  # noqa: E402
import bench_examples  # noqa: E402
import bench_matching  # noqa: E402
import bench_multilabel  # noqa: E402
import bench_multilabel_losses  # noqa: E402
import bench_quality  # noqa: E402
import bench_serve  # noqa: E402
import bench_sparse  # noqa: E402
import bench_static_training  # noqa: E402
import bench_throughput  # noqa: E402
from common import REPO  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--out", type=Path, default=REPO / "BENCHMARKS.md")
    args = parser.parse_args()
    if not args.data.is_dir():
        sys.exit(f"error: {args.data}: datasets folder not found; pass --data PATH (see README, Benchmarks)")
    common = ["--data", str(args.data), "--out", str(args.out)]
    bench_throughput.main(common)
    bench_quality.main(common)
    bench_matching.main(common)
    bench_dense_search.main(common)
    bench_multilabel.main(["--out", str(args.out)])
    bench_definitions.main(common)
    bench_sparse.main(common)
    bench_static_training.main(common)
    bench_serve.main(["--out", str(args.out)])
    bench_examples.main(common)
    bench_multilabel_losses.main(common)


if __name__ == "__main__":
    main()
