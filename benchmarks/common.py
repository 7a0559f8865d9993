"""Shared bits of the benchmarks: machine description, medians, and BENCHMARKS.md sections."""

from __future__ import annotations

import os
import platform
import re
import statistics
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def machine() -> str:
    cpu = "unknown CPU"
    try:
        cpu = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    except (OSError, StopIteration):
        pass
    import numpy
    import torch

    return (
        f"{os.cpu_count()} cores ({cpu}), Python {platform.python_version()}, "
        f"torch {torch.__version__}, numpy {numpy.__version__}"
    )


def median_time(fn: Callable[[], object], repeats: int = 3) -> float:
    """Median wall time of `repeats` calls of `fn` (seconds)."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def md_table(header: list[str], rows: list[list[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


INTRO = """# Benchmarks

Every section below was written by the benchmark it names, with the command that produced it
and the machine it ran on; `make bench` (or `python benchmarks/run_all.py --data ../shared/data`)
reruns them all and rewrites this file. Medians are over the repeats stated in each section;
ratios compare numbers measured in the same run.
"""


def update_section(path: Path, heading: str, body: str) -> None:
    """Replace (or append) the `## heading` section of the markdown file `path`."""
    text = path.read_text() if path.exists() else INTRO
    section = f"## {heading}\n\n{body.strip()}\n"
    pattern = re.compile(rf"^## {re.escape(heading)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(text):
        text = pattern.sub(lambda _: section + "\n", text)
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text.rstrip("\n") + "\n")


def quiet_logs() -> None:
    """Keep library INFO chatter out of benchmark output (progress bars stay)."""
    import logging

    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    for name in ("sentence_transformers", "transformers", "mlflow", "bm25s", "simlab"):
        logging.getLogger(name).setLevel(logging.WARNING)


def emit(out: Path | None, heading: str, body: str) -> str:
    """Print a benchmark's markdown section and, when `out` is given, write it into that file."""
    if out:
        update_section(out, heading, body)
    print(body)
    return body
