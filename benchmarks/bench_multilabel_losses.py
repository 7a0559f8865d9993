"""Multi-label losses and thresholds on real texts: the shipped multi-label text example on Reuters-21578 ModApte
with BCE, weighted BCE and focal loss, and per-label against one global threshold.

Every run is the user's path, `simlab run examples/multilabel-text.yaml --set data.path=<Reuters> --set
loss.name=<loss> ...` in a fresh process. The table reads the `trained` system (the encoder + head the loss
trains); the setting a user should take is the one with the best val F1 micro, never chosen by test.

    python benchmarks/bench_multilabel_losses.py --data ../shared/data --out BENCHMARKS.md
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_examples import CASES, prepare, run_example  # noqa: E402
from common import REPO, emit, machine, md_table  # noqa: E402

HEADING = "Multi-label losses and thresholds on Reuters-21578"
SETTINGS = {  # name -> overrides of examples/multilabel-text.yaml (its thresholds: per-label)
    "BCE": ["loss.name=bce"],
    "BCE, one global threshold": ["loss.name=bce", "thresholds.mode=global"],
    "weighted BCE": ["loss.name=weighted_bce"],
    "weighted BCE, pos_weight capped at 10": ["loss.name=weighted_bce", "loss.max_pos_weight=10"],
    "focal (alpha 0.25, gamma 2)": ["loss.name=focal", "loss.alpha=0.25", "loss.gamma=2"],
    "focal (alpha 0.25, gamma 2), one global threshold": [
        "loss.name=focal",
        "loss.alpha=0.25",
        "loss.gamma=2",
        "thresholds.mode=global",
    ],
    "focal without alpha (gamma 2)": ["loss.name=focal", "loss.alpha=-1", "loss.gamma=2"],
}
METRICS = ["f1_micro", "f1_macro", "ap"]


def run(name: str, overrides: list[str], data: Path, work: Path) -> tuple[dict, float]:
    """(metrics.json, minutes) of one setting, run once (a finished run folder is read again)."""
    out = work / "runs" / ("reuters-loss-" + "".join(c if c.isalnum() else "-" for c in name)[:60])
    return run_example("multilabel-text.yaml", data, ["tracking.mlflow=false", *overrides], out, work)


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--out", type=Path, default=None, help="BENCHMARKS.md to update")
    parser.add_argument("--work", type=Path, default=REPO / ".bench" / "examples")
    args = parser.parse_args(argv)
    given = args.data
    args.data, args.work = args.data.resolve(), args.work.resolve()
    args.work.mkdir(parents=True, exist_ok=True)
    reuters = prepare(next(c for c in CASES if c.name == "reuters"), args.data, args.work)
    rows, scores, chosen = [], {}, set()
    for name, overrides in SETTINGS.items():
        metrics, minutes = run(name, overrides, reuters, args.work)
        m = metrics["trained"]
        scores[name] = m["val_f1_micro"]
        chosen.add(metrics["chosen"]["system"])
        rows.append(
            [name, *(f"{m[f'val_{k}']:.4f}" for k in METRICS), *(f"{m[k]:.4f}" for k in METRICS), f"{minutes:.1f}"]
        )
    best = max(scores, key=scores.get)
    tfidf = metrics["tfidf"]
    header = ["setting", *(f"val {k}" for k in METRICS), *(f"test {k}" for k in METRICS), "min"]
    body = "\n".join(
        [
            f"Command: `python benchmarks/bench_multilabel_losses.py --data {given} --out BENCHMARKS.md`",
            f"Machine: {machine()}. Each run: `simlab run examples/multilabel-text.yaml --set data.path=<Reuters> "
            "--set tracking.mlflow=false` plus the setting's overrides, in a fresh process.",
            "",
            "Data: Reuters-21578 ModApte as `simlab data convert reuters21578` writes it (90 topics with a test "
            "document; val a fixed share of the training documents). System: `trained`, the frozen wordllama "
            "encoder with the example's MLP head; per-label thresholds are tuned on val for labels with at least "
            "`thresholds.min_positives` val positives, the global one for the rest. `weighted_bce` weighs each "
            "label's positives by (1 - prior) / prior; focal loss is the formula of torchvision's "
            "`sigmoid_focal_loss`.",
            "",
            md_table(header, rows),
            "",
            f"- Best val F1 micro of the trained head: {best} ({scores[best]:.4f}). The runs' own answers "
            f"(`chosen`): {', '.join(f'`{c}`' for c in sorted(chosen))}; `tfidf` scores val F1 micro "
            f"{tfidf['val_f1_micro']:.4f}, test {tfidf['f1_micro']:.4f} / macro {tfidf['f1_macro']:.4f}.",
        ]
    )
    return emit(args.out, HEADING, body)


if __name__ == "__main__":
    main()
