"""Regenerate the seed logs of docs/examples/ from the configs of examples/seeds/.

    python docs/examples/regenerate.py 001          # one seed (000 .. 004)
    python docs/examples/regenerate.py all          # every seed, one after the other (make seeds)

Run from the project root (the configs read ../shared/data and data/). Each seed prepares the data it
needs (`simlab data convert ...` when the folder is missing), runs its configs into runs/seeds/
(finished runs and sweep points are kept and not run again; --fresh runs them again), then writes
its reports (`simlab report`'s HTML and markdown) to docs/examples/seed-NNN-*.{html,md} with this
command at the top. The runs are meant to be short: a few minutes per seed on 2 cores.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs" / "examples"
RUNS = Path("runs/seeds")
SHARED = Path("../shared/data")


@dataclass
class Part:
    """One report of a seed: the runs it shows (configs run into runs/seeds/<stem>), and its text."""

    name: str  # docs/examples/<name>.html
    configs: list[str]  # examples/seeds/<stem>.yaml, run in order; the report shows their runs in that order
    preface: list[str]
    baseline: str | None = None  # a system (one run) or a run (several); default: the report's default
    inspect: list[tuple[str, str]] = field(default_factory=list)  # (run under runs/seeds, query): `simlab inspect`
    pca: list[tuple[float, float]] = field(default_factory=list)  # filter-pca bounds (label-1 max, label-0 min)


PRE_001 = (
    "Seed 001 (../shared/seeds/001_*) trained a classifier head over the sum of BERT-large's last 4 layers "
    "(1024-d) to tell whether a context uses a word in the sense a definition gives, for 10-24 epochs of 12-24 "
    "hours. Here: WiC-TSV (train 2,643 pairs; test is its Development split, 389 pairs), the offline wordllama "
    "encoder (256-d static embeddings, frozen: embedded once) and the seed's optimiser settings (AdamW, learning "
    "rate 1e-4, batch 4, 10 epochs). Static embeddings hold little of a word's sense in context, so accuracy stays "
    "near chance: the structure of the experiment is reproduced, not its quality. `model.layers: last4_sum` sums "
    "the last 4 layers of a transformers encoder such as `model.name: minilm`; the shipped example, mpnet with the "
    "WordNet sense margin, reaches 0.76 accuracy (BENCHMARKS.md)."
)

SEEDS: dict[str, list[Part]] = {
    "000": [
        Part(
            "seed-000-ratios",
            ["seed-000-ratios"],
            [
                "Seed 000 (../shared/seeds/000_*) trained a siamese product matcher with several ratios of negatives "
                "to positives and shares of hard negatives. Here: Amazon-Google (DeepMatcher split; test 2,293 "
                "pairs), wordllama, contrastive loss. The seed's grid was pos_neg_ratio 1, 2, 4, 8 x hard_soft_ratio "
                "0.3, 0.7, 0.8; to keep the regeneration to a few minutes on 2 cores, this is the 3 x 2 grid of "
                "pos_neg_ratio 1, 2, 4 x hard_soft_ratio 0.3, 0.8 with 1 epoch per point (the config says how to run "
                "the full grid). Each run's trained matcher, at its val-tuned threshold, is compared with the first "
                "point's."
            ],
        )
    ],
    "001": [
        Part(
            "seed-001-heads",
            ["seed-001-heads"],
            [PRE_001, "Part 1: the head's branch widths; [256, 256] stands for the seed's full-width [1024, 1024]."],
        ),
        Part(
            "seed-001-synthetic",
            ["seed-001-synthetic"],
            [
                PRE_001,
                "Part 2: synthetic negatives. A share of the label-0 train pairs is replaced by a template context "
                "holding a positive pair's word, paired with that pair's definition (the seed's 100 %, 70 %, 80 %), "
                "against no replacement.",
            ],
        ),
        Part(
            "seed-001-swap",
            ["seed-001-swap"],
            [
                PRE_001,
                "Part 3: every label-0 train pair replaced by the seed's 'opposite index' swap, with its two heads.",
            ],
        ),
        Part(
            "seed-001-pca",
            ["seed-001-pca"],
            [
                PRE_001,
                "Part 4: the PCA filter. `simlab data filter-pca` projects example and definition embeddings to "
                "2-D, keeps label-1 train pairs closer than a bound and label-0 pairs farther than another, and a "
                "cosine head is trained on what is left. The seed's bounds (75/75, 70/80, 75/80) are raw distances "
                "of its embeddings; here they are percentiles of the train pairs' distances. The filter's output "
                "and its plots are at the end.",
            ],
            pca=[(75, 75), (70, 80), (75, 80)],
        ),
    ],
    "002": [
        Part(
            "seed-002-splade",
            ["seed-002-splade"],
            [
                "Seed 002 (../shared/seeds/002_*) benchmarked naver/splade-cocondenser-ensembledistil on MS MARCO "
                "(MRR@10 on 3k queries, indexing time, per-query latency), trained SPLADE on MS MARCO triples, and "
                "found punctuation among the top expansion tokens. That model is on the Hugging Face hub only "
                "(examples/splade-eval.yaml evaluates it where the hub is reachable). Here, offline: the toy MS "
                "MARCO collection of naver/splade (89 passages, 9 test queries, 100 training triples), a small "
                "BERT-MLM trained from scratch (bert-mlm-scratch) with SpladeLoss, and the vocabulary mask as the "
                "swept field: none, punctuation + special + unused tokens, and stop words too (3 epochs each). The "
                "comparison sets each mask's trained model (exact search) against the unmasked one; with 9 queries "
                "no difference is significant. The speed table holds the untrained (zeroshot) and trained model "
                "with exact (inverted index) and approximate (Seismic) search, documents encoded per second, "
                "active dimensions and per-query latency. A model trained this briefly is far from sparse (some "
                "2,000 of 3,200 dimensions active), which makes Seismic slow to build and no faster than exact "
                "search here. The inspect output at the end shows each mask's expansion tokens for the seed's two "
                "queries: as in the seed, '.' is among the unmasked model's top tokens, and the masks remove it.",
            ],
            inspect=[
                (f"seed-002-splade/{mask}", query)
                for mask in (
                    "mask=empty",
                    "mask=punctuation+special+unused",
                    "mask=punctuation+special+unused+stopwords",
                )
                for query in ("what is python programming", "best restaurants in paris")
            ],
        )
    ],
    "003": [
        Part(
            f"seed-003-{part}",
            ["seed-003-baseline", f"seed-003-{part}"],
            [
                "Seed 003 (../shared/seeds/003_*) trained a multi-label image classifier: a baseline with default "
                "settings, then ExponentialLR with gamma 0.95 / 0.90 / 0.85 / 0.80, ResNet-50 and ResNet-152 "
                "against ResNet-18, focal loss and BCE weighted by the label prior, each with deltas against the "
                "baseline (f1: 0.59 (+0.02)). Here, offline: scikit-learn's digits (1,797 images of 8 x 8 pixels, "
                "resized to 16 x 16) with 4 attribute labels (even, prime, ge5, loop), randomly initialised "
                "ResNets (no ImageNet weights without the hub), 2 epochs of 8 batches of 64 (`train.max_steps: 8`, "
                "so that the ten runs take a few minutes on 2 cores; remove it for full epochs). Each run's "
                "report.md holds the seed's TEST/VAL block with deltas against the baseline run (`baseline:` in "
                "the config); this report compares each run's trained model with the baseline run's (the first row).",
                text,
            ],
            baseline="seed-003-baseline",
        )
        for part, text in (
            ("gamma", "Part 1: the ExponentialLR gamma sweep against the baseline's constant learning rate."),
            (
                "backbone",
                "Part 2: the backbone size at gamma 0.85 (ResNet-18 and ResNet-50; ResNet-152 is left out to keep "
                "the regeneration short, `model.backbone: resnet152` runs it). From random weights, 16 steps are "
                "far too few for ResNet-50: it is significantly worse than the baseline here, unlike the seed's "
                "pretrained ResNets. The run times come from a shared machine and are noisy; each run's "
                "cost.json holds its parameter count and seconds per epoch.",
            ),
            (
                "losses",
                "Part 3: the losses at gamma 0.85: BCE, focal (alpha 0.25, gamma 2), BCE weighted by the prior.",
            ),
        )
    ],
    "004": [
        Part(
            "seed-004-search",
            ["seed-004-search"],
            [
                "Seed 004 (../shared/seeds/004_*) fine-tuned a dense retriever and measured nDCG@10 with exhaustive "
                "search (36.52) against approximate search (31.23), and the pretrained all-MiniLM-L12-v2 (36.97) "
                "against the fine-tuned model. Here: Cranfield (1,400 documents, 225 queries; no train queries, so "
                "the model trains on title -> body pairs of its own documents, and 30% of the queries are held "
                "out as val, the rest scored as test), wordllama pretrained (zeroshot) and "
                "trained for 2 epochs, each with exact search (flat), HNSW and IVF (index.ivf.min_docs lowered to "
                "1,000 so that IVF runs on this collection; a small nprobe and efSearch make the approximation "
                "visible). Every system is compared with the pretrained model's exact search; the speed table "
                "gives each index's quality lost against exact search with the same model."
            ],
            baseline="zeroshot.flat",
        )
    ],
}

PREPARE = {
    "001": [(Path("data/wictsv"), ["data", "convert", "wic-tsv", str(SHARED / "wic-tsv"), "--out", "data/wictsv"])],
    "003": [(Path("data/digits"), ["data", "convert", "digits", "--out", "data/digits"])],
}


def simlab(*args: str, capture: bool = False) -> str:
    """Run `python -m simlab ARGS` with this checkout's simlab; its output, when captured."""
    env = os.environ | {"PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    print("+ simlab " + " ".join(args), flush=True)
    proc = subprocess.run(
        [sys.executable, "-m", "simlab", *args], cwd=ROOT, env=env, text=True, capture_output=capture, check=False
    )
    if proc.returncode != 0:
        sys.exit(f"simlab {' '.join(args)} failed (exit {proc.returncode})" + (f":\n{proc.stderr}" if capture else ""))
    return proc.stdout if capture else ""


def run_config(stem: str, fresh: bool) -> Path:
    """Run examples/seeds/<stem>.yaml into runs/seeds/<stem> (kept when finished, unless `fresh`)."""
    out = RUNS / stem
    if fresh and (ROOT / out).exists():
        shutil.rmtree(ROOT / out)
    if not (ROOT / out / "meta.json").is_file():  # a sweep run again skips its finished points
        simlab("run", f"examples/seeds/{stem}.yaml", "--out", str(out))
    return out


def pca_filter(bounds: list[tuple[float, float]], fresh: bool) -> tuple[str, list]:
    """The filtered WiC-TSV folders of seed 001's part 4, their filter-pca output and plots."""
    from simlab.experiments.report_figures import Figure

    text, figures = [], []
    for l1, l0 in bounds:
        out, plot = Path(f"data/wictsv-pca-{l1:g}-{l0:g}"), RUNS / f"pca-{l1:g}-{l0:g}.png"
        if fresh or not (ROOT / out).is_dir() or not (ROOT / plot).is_file():
            args = ["data", "filter-pca", "data/wictsv", "--label1-max", f"{l1:g}", "--label0-min", f"{l0:g}"]
            text.append(simlab(*args, "--plot", str(plot), "--out", str(out), "--overwrite", capture=True).strip())
        else:
            text.append(f"{out}: kept from an earlier regeneration (--fresh filters again)")
        figures.append(
            Figure(
                f"pca_{l1:g}_{l0:g}",
                f"PCA filter: label 1 < {l1:g}, label 0 > {l0:g} (percentiles)",
                (ROOT / plot).read_bytes(),
            )
        )
    return "\n".join(text), figures


def regenerate(seed: str, fresh: bool) -> None:
    sys.path.insert(0, str(ROOT))
    from simlab.experiments.html_report import build_report

    for folder, args in PREPARE.get(seed, []):
        if not (ROOT / folder).exists():
            simlab(*args)
    for part in SEEDS[seed]:
        appendix, extra = [], []
        if part.pca:
            text, extra = pca_filter(part.pca, fresh)
            appendix.append(("simlab data filter-pca", text))
        folders = [run_config(stem, fresh) for stem in part.configs]
        for run, query in part.inspect:
            shown = simlab("inspect", str(RUNS / run), query, "--top", "20", capture=True)
            appendix.append((f"simlab inspect {RUNS / run} {query!r} --top 20", shown.rstrip()))
        os.chdir(ROOT)
        report = build_report(folders, baseline=part.baseline)
        report.title = f"{part.name}: regenerated seed log"
        report.made_with = f"python docs/examples/regenerate.py {seed}"
        report.preface = part.preface
        report.figures += extra
        report.appendix = appendix
        report.save(DOCS / f"{part.name}.html")
        print(f"wrote docs/examples/{part.name}.html and .md", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("seeds", nargs="+", choices=[*SEEDS, "all"])
    parser.add_argument(
        "--fresh", action="store_true", help="run the configs again (deletes their runs/seeds/ folders)"
    )
    args = parser.parse_args()
    for seed in SEEDS if "all" in args.seeds else args.seeds:
        regenerate(seed, args.fresh)


if __name__ == "__main__":
    main()
