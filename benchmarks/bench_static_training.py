"""Static-embedding training speed: a frozen encoder encodes once; fine-tuning wordllama with sparse gradients.

One run measures, on the real data of ../shared/data:

1. Frozen encoder, encode once: `simlab run` (`run_experiment`) of examples/multilabel-text.yaml with
   `model.freeze: true`, 10 epochs, on the Reuters-21578 training set repeated to about 42k texts (each copy
   after the first made distinct by a trailing copy number, so every text is encoded), val and test as converted;
   with the feature cache (`simlab.models.frozen`) and without it (every batch encoded again): wall time of the
   whole run and of its training (encoding, 10 epochs, val every epoch). Target: <= 60 s with the cache.
2. Fine-tuning wordllama, texts/s, dense gradients (`train.sparse_grads: false`, the trainers' AdamW on the whole
   table) against sparse ones (the default, `simlab.training.static_tables`), through each task's training
   function: multilabel (`train_multilabel`, Reuters texts, batch 64), pairs (`train_pairs`, Amazon-Google given
   train pairs, batch 64), definitions with a trainable encoder (`train_head`, the same pairs, batch 32) and
   retrieval (`train_dense`, Cranfield title -> body pairs, batch 32). A text is one side of a pair. Medians of
   `--repeats` interleaved repeats. Target: >= 2,000 texts/s for multilabel and pairs.
3. Quality: examples/multilabel-text.yaml fine-tuning wordllama (`model.freeze: false`) on Reuters and
   examples/matching.yaml on Amazon-Google, dense and sparse: val and test metrics of the trained system.

    python benchmarks/bench_static_training.py --data ../shared/data --out BENCHMARKS.md
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from unittest import mock

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, emit, machine, md_table, quiet_logs  # noqa: E402

HEADING = "Static embeddings: frozen encoder encoded once, wordllama fine-tuned with sparse gradients"


def reuters_files(data: Path, work: Path, copies: int) -> tuple[Path, Path]:
    """(the converted Reuters folder, a folder whose train split is the Reuters train split `copies` times)."""
    from simlab.data.loader import convert

    base = work / "reuters"
    if not (base / "texts.jsonl").is_file():
        convert("reuters21578", data / "reuters21578", base, overwrite=True)
    big = work / f"reuters-x{copies}"
    if not (big / "texts.jsonl").is_file():
        rows = [json.loads(line) for line in (base / "texts.jsonl").read_text(encoding="utf-8").splitlines()]
        out = []
        for r in rows:
            out.append(r)
            if r["split"] == "train":
                out += [r | {"id": f"{r['id']}#{k}", "text": f"{r['text']} {k}"} for k in range(1, copies)]
        big.mkdir(parents=True, exist_ok=True)
        (big / "texts.jsonl").write_text("".join(json.dumps(r) + "\n" for r in out), encoding="utf-8")
    return base, big


def frozen_runs(big: Path, work: Path) -> dict:
    """The frozen 10-epoch run with and without the feature cache: wall and training seconds, val AP."""
    import simlab.models.multilabel as ml
    from simlab.experiments.runner import run_experiment
    from simlab.tasks import load_config

    out = {}
    build = ml.build_model
    for name, cache in (("cached", True), ("uncached", False)):
        cfg = load_config(
            REPO / "examples" / "multilabel-text.yaml",
            [f"data.path={big / 'texts.jsonl'}", "model.freeze=true", "train.epochs=10", "tracking.mlflow=false"],
        )
        with mock.patch.object(ml, "build_model", lambda *a, c=cache: build(*a, cache=c)):
            t0 = time.perf_counter()
            summary = run_experiment(cfg, work / "runs" / f"frozen-{name}", overwrite=True)
            wall = time.perf_counter() - t0
        out[name] = {
            "wall": wall,
            "train": summary.cost["train_seconds"],
            "val_ap": summary.metrics["trained"]["val_ap"],
            "f1_micro": summary.metrics["trained"]["f1_micro"],
        }
    out["n_train"] = sum(1 for line in (big / "texts.jsonl").open() if '"split": "train"' in line)
    return out


def _items(path: Path, split: str, n: int):
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    return [r for r in rows if r["split"] == split][:n]


def multilabel_rate(base: Path, sparse: bool, n: int) -> float:
    import numpy as np
    import torch

    from simlab.models.multilabel import build_model
    from simlab.tasks import load_config
    from simlab.training.multilabel import train_multilabel
    from simlab.training.multilabel_losses import build_loss

    train, val = _items(base / "texts.jsonl", "train", n), _items(base / "texts.jsonl", "val", 64)
    vocab = sorted({lab for r in train + val for lab in r["labels"]})
    y = {"t": np.array([[lab in r["labels"] for lab in vocab] for r in train], np.float32)}
    y["v"] = np.array([[lab in r["labels"] for lab in vocab] for r in val], np.float32)
    cfg = load_config(
        REPO / "examples" / "multilabel-text.yaml",
        [f"data.path={base / 'texts.jsonl'}", "model.freeze=false", "train.epochs=1", f"train.sparse_grads={sparse}"],
    )
    torch.manual_seed(0)
    model = build_model(cfg, "text", len(vocab))
    texts, val_texts = [r["text"] for r in train], [r["text"] for r in val]
    loss = build_loss(cfg.loss, y["t"])
    result = train_multilabel(model, texts, y["t"], val_texts, y["v"], loss, cfg.train, cfg.scheduler, None, False)
    return len(texts) / result.seconds


def amazon_google_pairs(data: Path, n: int):
    """The first `n` given train pairs and 64 val pairs of Amazon-Google, records joined as the pairs task joins."""
    from simlab.training.pairs import PairSet

    folder = data / "amazon-google"

    def table(name: str) -> dict[str, str]:
        with (folder / name).open(encoding="utf-8") as f:
            return {r["id"]: " ".join(v for k, v in r.items() if k != "id" and v) for r in csv.DictReader(f)}

    a, b = table("tableA.csv"), table("tableB.csv")

    def pairs(name: str, k: int) -> PairSet:
        with (folder / name).open(encoding="utf-8") as f:
            rows = list(csv.DictReader(f))[:k]
        return PairSet(
            [a[r["ltable_id"]] for r in rows],
            [b[r["rtable_id"]] for r in rows],
            [int(r["label"]) for r in rows],
            [str(i) for i in range(len(rows))],
        )

    return pairs("train.csv", n), pairs("valid.csv", 64)


def pairs_rate(data: Path, sparse: bool, n: int) -> float:
    from simlab.config import ModelConfig, PairTrainConfig
    from simlab.models import load_model
    from simlab.training.pairs import train_pairs

    train, val = amazon_google_pairs(data, n)
    cfg = PairTrainConfig(epochs=1, batch_size=64, sparse_grads=sparse)
    with tempfile.TemporaryDirectory() as tmp:
        result = train_pairs(load_model(ModelConfig()), train, val, cfg, Path(tmp))
    return 2 * len(train) / result.seconds


def head_rate(data: Path, sparse: bool, n: int) -> float:
    from simlab.config import HeadConfig, ModelConfig, PairTrainConfig
    from simlab.models import load_model
    from simlab.models.head import PairHead
    from simlab.training.head import train_head

    train, val = amazon_google_pairs(data, n)
    model = load_model(ModelConfig())
    head = PairHead(model.get_embedding_dimension())
    cfg = PairTrainConfig(epochs=1, batch_size=32, learning_rate=1e-3, sparse_grads=sparse)
    head_cfg = HeadConfig(freeze_encoder=False, encoder_learning_rate=1e-3)
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()):  # its epoch line
        result = train_head(model, head, train, val, cfg, head_cfg)
    return 2 * len(train) / result.seconds


def retrieval_rate(data: Path, sparse: bool, epochs: int = 3) -> float:
    from simlab.config import ModelConfig, TrainConfig
    from simlab.data.loader import load_collection
    from simlab.data.pairs import DevSet, build_pairs
    from simlab.models import load_model
    from simlab.training.dense import train_dense
    from simlab.training.mining import no_negatives

    pairs = build_pairs(load_collection(data / "cranfield"), "none", "none", seed=0)
    cfg = TrainConfig(epochs=epochs, batch_size=32, sparse_grads=sparse)
    with tempfile.TemporaryDirectory() as tmp:
        result = train_dense(
            load_model(ModelConfig()), no_negatives(pairs), DevSet({}, {}, {}, "none"), cfg, Path(tmp), False
        )
    return 2 * len(pairs.anchors) * epochs / result.seconds


def quality_runs(base: Path, data: Path, work: Path) -> list[list[str]]:
    from simlab.experiments.runner import run_experiment
    from simlab.tasks import load_config

    rows = []
    specs = [
        (
            "multilabel (Reuters, fine-tuned)",
            "multilabel-text.yaml",
            [f"data.path={base / 'texts.jsonl'}", "model.freeze=false"],
            ("f1_micro", "ap"),
        ),
        ("pairs (Amazon-Google)", "matching.yaml", [f"data.path={data / 'amazon-google'}"], ("f1", "ap")),
    ]
    for what, config, overrides, metrics in specs:
        for sparse in (False, True):
            cfg = load_config(
                REPO / "examples" / config, [*overrides, "tracking.mlflow=false", f"train.sparse_grads={sparse}"]
            )
            t0 = time.perf_counter()
            summary = run_experiment(cfg, work / "runs" / f"{config[:-5]}-{sparse}", overwrite=True)
            m = summary.metrics["trained"]
            rows.append(
                [what, "sparse" if sparse else "dense"]
                + [f"{m[f'val_{k}']:.4f}" for k in metrics]
                + [f"{m[k]:.4f}" for k in metrics]
                + [", ".join(metrics), f"{(time.perf_counter() - t0) / 60:.1f}"]
            )
    return rows


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--out", type=Path, default=None, help="BENCHMARKS.md to update")
    parser.add_argument("--work", type=Path, default=REPO / ".bench" / "static")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: the machine is shared)")
    parser.add_argument("--copies", type=int, default=6, help="Reuters train split repeated this many times")
    parser.add_argument("--skip-quality", action="store_true")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    quiet_logs()
    import torch

    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()
    t_all = time.perf_counter()
    base, big = reuters_files(args.data, args.work, args.copies)
    frozen = frozen_runs(big, args.work)
    rates: dict[tuple[str, bool], list[float]] = {}
    tasks = {
        "multilabel (train_multilabel, batch 64)": lambda s: multilabel_rate(base, s, 6400),
        "pairs (train_pairs, batch 64)": lambda s: pairs_rate(args.data, s, 3200),
        "definitions, trainable encoder (train_head, batch 32)": lambda s: head_rate(args.data, s, 3200),
        "retrieval (train_dense, batch 32, 3 epochs)": lambda s: retrieval_rate(args.data, s),
    }
    for r in range(args.repeats):  # interleaved, alternating which side runs first, so load drift hits both alike
        for task, fn in tasks.items():
            for sparse in (False, True) if r % 2 == 0 else (True, False):
                rates.setdefault((task, sparse), []).append(fn(sparse))
    quality = [] if args.skip_quality else quality_runs(base, args.data, args.work)
    total = time.perf_counter() - t_all

    speed_rows = []
    for task in tasks:
        dense, sparse = statistics.median(rates[(task, False)]), statistics.median(rates[(task, True)])
        target = task.startswith(("multilabel", "pairs"))
        verdict = ("PASS" if sparse >= 2000 else "FAIL") if target else "(no target)"
        speed_rows.append([task, f"{dense:,.0f}", f"{sparse:,.0f}", f"{sparse / dense:.1f}x", verdict])
    c, u = frozen["cached"], frozen["uncached"]
    body = [
        f"Command: `python benchmarks/bench_static_training.py --data {args.data} --repeats {args.repeats} "
        f"--threads {args.threads} --out BENCHMARKS.md` (from the project root; {total / 60:.0f} min in all).",
        "",
        f"Machine: {machine()}. torch threads: {args.threads}. Load average (1, 5, 15 min) before: "
        f"{', '.join(f'{x:.1f}' for x in load_before)}; after: {', '.join(f'{x:.1f}' for x in os.getloadavg())} "
        "(the machine is shared).",
        "",
        f"**Frozen encoder, encoded once.** `simlab run examples/multilabel-text.yaml` with `model.freeze=true`, "
        f"`train.epochs=10`, on Reuters-21578's train split repeated {args.copies} times ({frozen['n_train']:,} "
        "train texts, each copy after the first made distinct by a trailing number, so every one is encoded; "
        "val and test as converted). One run each.",
        "",
        md_table(
            ["features", "whole run (s)", "training: encoding + 10 epochs + val (s)", "val AP", "test F1 micro"],
            [
                [n, f"{d['wall']:.1f}", f"{d['train']:.1f}", f"{d['val_ap']:.4f}", f"{d['f1_micro']:.4f}"]
                for n, d in (("encoded once (cache)", c), ("encoded every batch (no cache)", u))
            ],
        ),
        "",
        f"Ratio without / with the cache: {u['train'] / c['train']:.1f}x (training), {u['wall'] / c['wall']:.1f}x "
        f"(whole run; it also fits the `tfidf` reference, a linear SVM per label, on the same texts). Target <= 60 s: "
        f"training {c['train']:.1f} s {'PASS' if c['train'] <= 60 else 'FAIL'}, whole run {c['wall']:.1f} s "
        f"{'PASS' if c['wall'] <= 60 else 'FAIL'}.",
        "",
        "**Fine-tuning wordllama, texts/s** (a pair is two texts), dense gradients (`train.sparse_grads=false`: "
        "AdamW over the whole 32k x 256 table every step) vs sparse (the default: the rows of the batch's tokens, "
        f"lazy Adam). Medians of {args.repeats} interleaved repeats; each rate includes the task's own per-epoch "
        "work (a 64-item val pass, the trainer's checkpoint).",
        "",
        md_table(
            ["task (function, batch)", "dense texts/s", "sparse texts/s", "speed-up", "target >= 2,000"], speed_rows
        ),
    ]
    if quality:
        body += [
            "",
            "**Quality, dense vs sparse gradients**: the examples as shipped except the override named, on the "
            "real data, the trained system's metrics (val picks the epoch and threshold; test read once).",
            "",
            md_table(["example", "gradients", "val (1)", "val (2)", "test (1)", "test (2)", "metrics", "min"], quality),
        ]
    return emit(args.out, HEADING, "\n".join(body))


if __name__ == "__main__":
    main()
