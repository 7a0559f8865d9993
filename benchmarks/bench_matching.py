"""Pair matching on Amazon-Google and Walmart-Amazon: the wordllama siamese matcher vs DeepMatcher.

Runs the real `simlab run` path (`run_experiment`, `task: pairs`) on the raw DeepMatcher
folders in ../shared/data with examples/matching.yaml plus the overrides below: per dataset
the settings chosen by val F1 (train on the given pairs) and two sampled-pair settings. Every
system's threshold is tuned on val and frozen for test, which is scored once; the setting
compared with DeepMatcher is the one with the best val F1 of this run (never chosen on test).
The runner also scores two reference systems the same way: `overlap` (Jaccard token overlap)
and `zeroshot` (the untrained model).

    python benchmarks/bench_matching.py --data ../shared/data --out BENCHMARKS.md
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, emit, machine, md_table, quiet_logs  # noqa: E402

HEADING = "Pair matching: Amazon-Google and Walmart-Amazon"
LIMIT_S = 15 * 60  # each run under 15 minutes

# Per dataset: the fields and training settings chosen by val F1 (see EXPLORATION), and the
# published test F1 of DeepMatcher (Mudgal et al. 2018, hybrid) and Ditto (Li et al. 2020).
DATASETS = {
    "amazon-google": {
        "overrides": ["data.fields=[title,manufacturer]", "train.learning_rate=0.05", "train.epochs=8"],
        "deepmatcher": 0.693,
        "ditto": 0.756,
        "published": "DeepMatcher 0.693, Ditto 0.756",
    },
    "walmart-amazon": {
        "overrides": ["data.fields=[title,brand,modelno]", "train.learning_rate=0.01", "train.epochs=6"],
        "deepmatcher": 0.67,
        "ditto": 0.87,
        "published": "DeepMatcher about 0.67, Ditto about 0.87",
    },
}
COMMON = [
    "tracking.mlflow=false",
    "model.name=wordllama",
    "train.loss=contrastive",
    "train.margin=0.5",
    "train.optimizer=adamw",
    "train.batch_size=64",
    "train.best_by=f1",
    "sampling.hard_miner=bm25",
]
SETTINGS = {
    "given": ["sampling.mode=given"],
    "sampled 1:2, hard 0.5": ["sampling.mode=sampled", "sampling.pos_neg_ratio=2", "sampling.hard_soft_ratio=0.5"],
    "sampled 1:4, hard 0.7": ["sampling.mode=sampled", "sampling.pos_neg_ratio=4", "sampling.hard_soft_ratio=0.7"],
}

# Val F1 of the exploration runs (separate `simlab run` sweeps, not rerun by this command),
# all `sampling.mode=given`, contrastive loss, batch 64, AdamW; the chosen rows are marked.
EXPLORATION = [
    ["amazon-google", "title manufacturer price (all)", "0.05", "0.5", 8, "0.6811", ""],
    ["amazon-google", "title manufacturer price (all)", "0.01", "0.5", 8, "0.6848", ""],
    ["amazon-google", "title manufacturer", "0.01", "0.5", 8, "0.6830", ""],
    ["amazon-google", "title manufacturer", "0.05", "0.5", 8, "0.7046", "chosen"],
    ["amazon-google", "title manufacturer", "0.05", "1.0", 8, "0.6350", ""],
    ["amazon-google", "title manufacturer", "0.05", "0.3", 8, "0.6992", ""],
    ["walmart-amazon", "all (title category brand modelno price)", "0.005", "0.5", 8, "0.5789", ""],
    ["walmart-amazon", "all", "0.01", "0.5", 8, "0.5873", ""],
    ["walmart-amazon", "all", "0.02", "0.5", 8, "0.5837", ""],
    ["walmart-amazon", "all", "0.05", "0.5", 8, "0.5774", ""],
    ["walmart-amazon", "all", "0.1", "0.5", 8, "0.5783", ""],
    ["walmart-amazon", "all", "0.2", "0.5", 8, "0.5537", ""],
    ["walmart-amazon", "title", "0.01", "0.5", 6, "0.5691", ""],
    ["walmart-amazon", "title modelno", "0.01", "0.5", 6, "0.6895", ""],
    ["walmart-amazon", "title modelno brand category", "0.01", "0.5", 6, "0.6506", ""],
    ["walmart-amazon", "title brand modelno", "0.01", "0.5", 6, "0.7105", "chosen"],
    ["walmart-amazon", "title brand modelno", "0.05", "0.5", 6, "0.6774", ""],
    ["walmart-amazon", "title brand modelno", "0.01", "1.0", 6, "0.6814", ""],
    ["walmart-amazon", "title brand modelno", "0.01", "0.3", 6, "0.6967", ""],
]


MODEL_SYSTEMS = ("trained", "hybrid")  # the systems that use the trained wordllama model


def _check(name: str, spec: dict, results: dict, systems: tuple[str, ...], what: str) -> tuple[str, str]:
    """The PASS/FAIL line against DeepMatcher for the (setting, system) with the best val F1."""
    setting, system = max(
        ((st, sy) for st in results for sy in systems if sy in results[st]), key=lambda k: results[k[0]][k[1]]["val_f1"]
    )
    m = results[setting][system]
    beats = m["f1"] > spec["deepmatcher"]
    line = (
        f"- {name}, {what}: beats DeepMatcher ({spec['deepmatcher']}): the best val F1 is `{setting}` / `{system}` "
        f"(val F1 {m['val_f1']:.4f}); its test F1 {m['f1']:.4f}: **{'PASS' if beats else 'FAIL'}** "
        f"(Ditto {spec['ditto']}: {'beaten' if m['f1'] > spec['ditto'] else 'not reached'}; token overlap "
        f"{results[setting]['overlap']['f1']:.4f})"
    )
    return line, f"{name} `{setting}`/{system} val {m['val_f1']:.4f} / test {m['f1']:.4f}"


def _row(dataset: str, setting: str, system: str, m: dict, per_epoch: str, total: str, best: str) -> list[str]:
    return [
        dataset,
        setting,
        system,
        f"**{m['f1']:.4f}**" if system in MODEL_SYSTEMS else f"{m['f1']:.4f}",
        f"{m['pos_acc']:.3f}",
        f"{m['neg_acc']:.3f}",
        f"{m['precision']:.3f}",
        f"{m['recall']:.3f}",
        f"{m['ap']:.3f}",
        f"{m['val_f1']:.4f}",
        f"{m['threshold']:.3f}",
        best,
        per_epoch,
        total,
    ]


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--out", type=Path, default=None, help="BENCHMARKS.md to update")
    parser.add_argument("--work", type=Path, default=REPO / ".bench" / "matching")
    parser.add_argument("--set", dest="extra", action="append", default=[], help="extra config override")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    quiet_logs()
    from simlab.experiments.runner import run_experiment
    from simlab.tasks import load_config

    t_all = time.perf_counter()
    rows, checks, times, notes, gaps = [], [], [], [], []
    for name, spec in DATASETS.items():
        results = {}
        for setting, sampling in SETTINGS.items():
            overrides = [f"data.path={args.data / name}", *COMMON, *spec["overrides"], *sampling, *args.extra]
            cfg = load_config(REPO / "examples" / "matching.yaml", overrides)
            folder = args.work / name / setting.replace(":", "-").replace(", ", "_").replace(" ", "-")
            t0 = time.perf_counter()
            summary = run_experiment(cfg, folder, overwrite=True)
            wall = time.perf_counter() - t0
            times.append((name, setting, wall))
            epochs = [h for h in summary.history if "epoch" in h]
            best = max(epochs, key=lambda h: h["val_f1"])["epoch"] if epochs else "-"
            per_epoch = statistics.mean(h["seconds"] for h in epochs) if epochs else 0.0
            results[setting] = summary.metrics
            if setting == next(iter(SETTINGS)):  # the reference systems do not depend on the train pairs
                for system in ("overlap", "zeroshot"):
                    rows.append(_row(name, "-", system, summary.metrics[system], "-", "-", "-"))
                notes.extend(f"{name}: {n}" for n in summary.notes if n.startswith(("train pairs", "val and")))
            else:
                notes.extend(f"{name}, {setting}: {n}" for n in summary.notes if "pairs sampled" in n)
            rows.append(_row(name, setting, "fields", summary.metrics["fields"], "-", "-", "-"))
            for system in MODEL_SYSTEMS:
                run_cols = (f"{per_epoch:.1f}", f"{wall:.0f}", f"{best}/{cfg.train.epochs}")
                rows.append(_row(name, setting, system, summary.metrics[system], *run_cols))
        for systems, what in ((MODEL_SYSTEMS, "wordllama matcher"), (("trained",), "the siamese model alone")):
            line, gap = _check(name, spec, results, systems, what)
            checks.append(line)
            gaps.append(gap)
    slowest = max(times, key=lambda t: t[2])
    checks.append(
        f"- each run under 15 minutes: slowest {slowest[0]} `{slowest[1]}` {slowest[2]:.0f} s "
        f"({slowest[2] / 60:.1f} min): **{'PASS' if slowest[2] < LIMIT_S else 'FAIL'}**"
    )
    settings_text = "; ".join(f"`{k}`: `{' '.join(v)}`" for k, v in SETTINGS.items())
    body = "\n".join(
        [
            f"Command: `python benchmarks/bench_matching.py --data {args.data} --out BENCHMARKS.md`",
            f"Machine: {machine()}. Total run time {(time.perf_counter() - t_all) / 60:.1f} min.",
            "",
            "The siamese matcher of `task: pairs` (wordllama StaticEmbedding, 256 dims, contrastive loss, "
            "cosine distance, margin 0.5, AdamW, batch 64, best epoch by val F1) on the raw DeepMatcher folders "
            "(Amazon-Google: 6,874 / 2,293 / 2,293 train / valid / test pairs; Walmart-Amazon: 6,144 / 2,049 / "
            "2,049). Config: `examples/matching.yaml` with "
            f"`{' '.join(COMMON)}` and per dataset "
            + "; ".join(f"{n}: `{' '.join(s['overrides'])}`" for n, s in DATASETS.items())
            + f". Sampling settings: {settings_text}; the sampled settings draw train pairs from the "
            "records of the train split's pairs (negatives: BM25-mined hard + random), the val and test pairs "
            "are always the dataset's own.",
            "",
            "Every system's threshold is tuned on val (F1-optimal) and frozen for test, which is scored once. "
            "F1, P Acc (recall of matches), N Acc (accuracy on non-matches), precision, recall and AP are on "
            "test; `best` is the best epoch by val F1 (its weights are kept); s/epoch is the mean wall time of "
            "an epoch including its val pass; run s is the whole `run_experiment` call (loading, mining, the "
            "reference systems, training, scoring, writing the run folder). `overlap` is Jaccard overlap of "
            "lower-cased word sets and `zeroshot` the untrained model; `fields` is a logistic regression on "
            "per-field similarity features (word Jaccard, exact and contained alphanumerics, missing values; "
            "`simlab.models.field_matcher`) fitted on the dataset's labelled train pairs in every setting, "
            "model-free; `hybrid` is the same with the "
            "trained model's cosine as one more feature. All on the same fields and scored the same way. The "
            "DeepMatcher check picks the (setting, system) with the best val F1 among the systems that use the "
            "trained model (`trained`, `hybrid`), and again for `trained` alone.",
            "",
            md_table(
                [
                    "dataset",
                    "setting",
                    "system",
                    "test F1",
                    "P Acc",
                    "N Acc",
                    "precision",
                    "recall",
                    "AP",
                    "val F1",
                    "thr (val)",
                    "best",
                    "s/epoch",
                    "run s",
                ],
                rows,
            ),
            "",
            "Published test F1 on the same splits, for reference: "
            + "; ".join(f"{n}: {s['published']}" for n, s in DATASETS.items())
            + ".",
            "",
            *checks,
            "",
            "### Exploration (val F1 only)",
            "",
            "Settings were chosen by val F1 alone (test F1 was not looked at to choose). Separate `simlab run` "
            "sweeps on this machine, `sampling.mode=given`, contrastive loss, batch 64, AdamW; `chosen` marks "
            "the fields, learning rate, margin and epochs used above. The sampling setting compared with "
            "DeepMatcher is then the one with the best val F1 in the run above.",
            "",
            md_table(["dataset", "fields", "lr", "margin", "epochs", "val F1", "note"], EXPLORATION),
            "",
            "- The price field hurts (numbers split into sub-word tokens blur a bag-of-tokens embedding); on "
            "Walmart-Amazon dropping price and category (two shops' own taxonomies) raised val F1 from 0.587 to "
            "0.711. The model code (`modelno`) carries most of the signal there.",
            "- The loss was not re-explored: earlier project runs on Amazon-Google (all fields, given pairs) "
            "with the cosent and online_contrastive losses scored below the contrastive loss; those were "
            "compared on test F1, so they are not part of the val-only selection.",
            "- Val F1 of a selected setting is biased upward by the selection (about 20 configurations, then 3 "
            "sampling settings, compared on 234 / 193 val matches); val vs test F1 of the selected settings: "
            + "; ".join(gaps)
            + ".",
            "- Timings are on a shared machine: identical runs during the exploration took between 1x and 2x "
            "of each other's wall time, so s/epoch is indicative only.",
            "- The model is a static (bag-of-token) embedding: it cannot see word order, and a product code "
            "is only the average of its sub-word pieces; Ditto's fine-tuned transformer reads the codes whole.",
            "",
            "Run notes:",
            *(f"- {n}" for n in notes),
        ]
    )
    return emit(args.out, HEADING, body)


if __name__ == "__main__":
    main()
