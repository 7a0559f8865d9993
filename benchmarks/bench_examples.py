"""The example configs as shipped, on the development data: what each run chooses (by val) and scores on test.

Every run is the user's path: `simlab run examples/<config>.yaml --set data.path=<dataset> --out ...` in a
fresh process, with no other override; the number read is the run's `chosen` entry of metrics.json (the
system with the best val score of the task's main metric, never chosen by test). Each run must finish in
15 minutes on this machine and reach the target below.

    python benchmarks/bench_examples.py --data ../shared/data --out BENCHMARKS.md [--only reuters ...]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, emit, machine, md_table  # noqa: E402

HEADING = "Example configs as shipped: the chosen system on real data"
LIMIT_MINUTES = 15


@dataclass(frozen=True)
class Case:
    name: str
    config: str  # examples/<config>
    source: str  # folder under --data
    converter: str | None  # `simlab data convert` kind, or None to read the folder as it is
    metric: str  # the test metric of the target
    target: float
    reference: str  # the target's origin
    data_file: str = ""  # the file inside the converted folder that data.path names


CASES = [
    Case("amazon-google", "matching.yaml", "amazon-google", "deepmatcher", "f1", 0.74, "Ditto 0.756"),
    Case("walmart-amazon", "matching.yaml", "walmart-amazon", "deepmatcher", "f1", 0.87, "Ditto 0.87"),
    Case("wic-tsv", "definitions.yaml", "wic-tsv", "wic-tsv", "accuracy", 0.70, "BERT-base 0.753 (test)"),
    Case(
        "reuters",
        "multilabel-text.yaml",
        "reuters21578",
        "reuters21578",
        "f1_micro",
        0.86,
        "linear SVM 0.86-0.87",
        "texts.jsonl",
    ),
    Case("reuters", "multilabel-text.yaml", "reuters21578", "reuters21578", "f1_macro", 0.50, "target", "texts.jsonl"),
    Case("nfcorpus", "dense.yaml", "nfcorpus", None, "ndcg@10", 0.34, "BM25 0.325 (BEIR)"),
    Case("cranfield", "dense.yaml", "cranfield", None, "ndcg@10", float("nan"), "beats BM25"),
    Case("cisi", "dense.yaml", "cisi", None, "ndcg@10", float("nan"), "beats BM25"),
]


def simlab(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = os.environ | {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "simlab", *args], cwd=cwd, env=env, capture_output=True, text=True)


def prepare(case: Case, data: Path, work: Path) -> Path:
    if case.converter is None:
        return data / case.source
    folder = work / "data" / case.source
    if not folder.exists():
        done = simlab("data", "convert", case.converter, str(data / case.source), "--out", str(folder), cwd=work)
        if done.returncode:
            raise SystemExit(done.stderr)
    return folder / case.data_file if case.data_file else folder


def run_example(config: str, data: Path, overrides: list[str], out: Path, work: Path) -> tuple[dict, float]:
    """(metrics.json, minutes) of `simlab run examples/<config> --set data.path=<data> --set <overrides>` into
    `out`, run once: a finished run folder is read again."""
    minutes = out.parent / f"{out.name}.minutes"
    if not (out / "metrics.json").is_file():
        t0 = time.perf_counter()
        sets = [x for o in [f"data.path={data}", *overrides] for x in ("--set", o)]
        done = simlab("run", str(REPO / "examples" / config), *sets, "--out", str(out), cwd=work)
        if done.returncode:
            raise SystemExit(f"{out.name}: simlab run failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
        minutes.write_text(f"{(time.perf_counter() - t0) / 60:.2f}")
    return json.loads((out / "metrics.json").read_text()), float(minutes.read_text())


def run(case: Case, data: Path, work: Path) -> tuple[dict, float]:
    """(metrics.json, minutes) of the example run on `case`'s data, run once per (config, dataset)."""
    out = work / "runs" / f"{case.name}-{Path(case.config).stem}"
    return run_example(case.config, prepare(case, data, work), [], out, work)


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--out", type=Path, default=None, help="BENCHMARKS.md to update")
    parser.add_argument("--work", type=Path, default=REPO / ".bench" / "examples")
    parser.add_argument("--only", nargs="*", default=None, help="dataset names to run (default: all)")
    parser.add_argument("--fresh", action="store_true", help="rerun runs finished by an earlier call")
    args = parser.parse_args(argv)
    given = args.data  # as the user typed it, for the Command line
    args.data, args.work = args.data.resolve(), args.work.resolve()  # the runs start in --work
    args.work.mkdir(parents=True, exist_ok=True)
    if args.fresh:
        import shutil

        shutil.rmtree(args.work / "runs", ignore_errors=True)
    rows, checks = [], []
    for case in CASES:
        if args.only and case.name not in args.only:
            continue
        metrics, minutes = run(case, args.data, args.work)
        chosen = metrics["chosen"]
        score = chosen["test"][case.metric]
        reference = next(iter(k for k in metrics if k != "chosen"))  # the task's reference system comes first
        ref = metrics[reference].get(case.metric)
        if case.target == case.target:  # a number
            ok = score >= case.target
            goal = f">= {case.target:.2f} ({case.reference})"
        else:
            ok = score > ref
            goal = f"> {reference} {ref:.4f}"
        rows.append(
            [
                case.name,
                f"`examples/{case.config}`",
                f"`{chosen['system']}`",
                f"{chosen['by']} {chosen['val']:.4f}",
                f"{case.metric} **{score:.4f}**",
                f"{reference} {ref:.4f}",
                goal,
                f"{minutes:.1f}",
                "PASS" if ok and minutes <= LIMIT_MINUTES else "FAIL",
            ]
        )
    header = ["dataset", "config", "chosen", "chosen by (val)", "test", "reference (test)", "target", "min", "result"]
    body = "\n".join(
        [
            f"Command: `python benchmarks/bench_examples.py --data {given} --out BENCHMARKS.md`",
            f"Machine: {machine()}. Each run: `simlab run examples/<config> --set data.path=<dataset> --out ...` "
            "in a fresh process, no other override (MLflow tracking on, as shipped).",
            "",
            md_table(header, rows),
            "",
            f"`min` is the run's wall time in minutes (limit {LIMIT_MINUTES}); `chosen` is the run's own answer "
            "(metrics.json), chosen by val; test numbers are read, never used to choose.",
            *checks,
        ]
    )
    return emit(args.out, HEADING, body)


if __name__ == "__main__":
    main()
