"""Encoding and training throughput: simlab's code path vs a minimal sentence-transformers script.

Both sides use the same wordllama StaticEmbedding model, the same texts and pairs (Cranfield
title -> body pairs when ../shared/data is present, else the demo collection), the same
batch size and one epoch. Encoding: `simlab.tasks.retrieval.systems.encode` vs a bare
`model.encode(...)`. Training: `simlab.training.dense.train_dense` (what `simlab run` calls)
vs a hand-written `SentenceTransformerTrainer` with MultipleNegativesRankingLoss. The
target is a ratio >= 0.95 for both.

    python benchmarks/bench_throughput.py --data ../shared/data --out BENCHMARKS.md
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, emit, machine, md_table, quiet_logs  # noqa: E402

HEADING = "Throughput: simlab vs a minimal sentence-transformers script"


def load_pairs(data: Path):
    from simlab.data.loader import load_collection
    from simlab.data.pairs import build_pairs

    folder = data / "cranfield"
    collection = load_collection(folder if folder.is_dir() else REPO / "examples" / "demo")
    pairs = build_pairs(collection, "none", "none", seed=0)
    return collection, pairs


def hand_written_training(anchors, positives, batch_size: int, epochs: int, out: str) -> float:
    """The minimal script a user would write; returns trainer.train() seconds."""
    from datasets import Dataset
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    from sentence_transformers.base.modules import Normalize
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    from simlab.models.wordllama import build_wordllama

    model = build_wordllama()
    model.append(Normalize())
    args = SentenceTransformerTrainingArguments(
        output_dir=out,
        num_train_epochs=epochs,
        per_device_train_batch_size=batch_size,
        learning_rate=0.05,
        warmup_steps=0.1,
        lr_scheduler_type="cosine",
        save_strategy="no",
        report_to="none",
        use_cpu=True,
        batch_sampler="no_duplicates",
        logging_steps=10**6,
    )
    trainer = SentenceTransformerTrainer(
        model=model,
        args=args,
        train_dataset=Dataset.from_dict({"anchor": anchors, "positive": positives}),
        loss=MultipleNegativesRankingLoss(model),
    )
    t0 = time.perf_counter()
    trainer.train()
    return time.perf_counter() - t0


def simlab_training(pairs, batch_size: int, epochs: int, out: str) -> float:
    from simlab.config import ModelConfig, TrainConfig
    from simlab.data.pairs import DevSet
    from simlab.models import load_model
    from simlab.training.dense import train_dense
    from simlab.training.mining import no_negatives

    model = load_model(ModelConfig())
    cfg = TrainConfig(epochs=epochs, batch_size=batch_size)
    result = train_dense(model, no_negatives(pairs), DevSet({}, {}, {}, "none"), cfg, Path(out), False)
    return result.seconds


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--out", type=Path, default=None, help="BENCHMARKS.md to update")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    quiet_logs()

    from simlab.config import ModelConfig
    from simlab.models import load_model
    from simlab.models.wordllama import build_wordllama
    from simlab.records import Queries
    from simlab.tasks.retrieval.systems import encode

    collection, pairs = load_pairs(args.data)
    texts = collection.corpus.full_texts()
    texts = (texts * (max(1, 50_000 // len(texts)) + 1))[:50_000]
    from simlab.records import Corpus

    big = Corpus([str(i) for i in range(len(texts))], texts)
    none = Queries([], [])
    ours_model = load_model(ModelConfig())
    ref_model = build_wordllama()
    from sentence_transformers.base.modules import Normalize

    ref_model.append(Normalize())
    enc_ours, enc_ref = [], []
    sides = [
        (enc_ref, lambda: ref_model.encode(big.full_texts(), batch_size=256, convert_to_numpy=True)),
        (enc_ours, lambda: encode(ours_model, big, none)),
    ]
    for r in range(args.repeats):  # interleaved, alternating who goes first, so load drift hits both alike
        for times, fn in sides if r % 2 == 0 else sides[::-1]:
            t0 = time.perf_counter()
            fn()
            times.append(len(big) / (time.perf_counter() - t0))

    train_ours, train_ref = [], []
    n = len(pairs.anchors) * args.epochs
    training = [
        (
            train_ref,
            lambda tmp: hand_written_training(pairs.anchors, pairs.positives, args.batch_size, args.epochs, tmp),
        ),
        (train_ours, lambda tmp: simlab_training(pairs, args.batch_size, args.epochs, tmp)),
    ]
    for r in range(args.repeats):
        for times, fn in training if r % 2 == 0 else training[::-1]:
            with tempfile.TemporaryDirectory() as tmp:
                times.append(n / fn(tmp))

    rows = []
    for what, ours, ref, unit in (
        ("encoding", enc_ours, enc_ref, "texts/s"),
        (f"training ({args.epochs} epochs, MNRL)", train_ours, train_ref, "pairs/s"),
    ):
        m_ours, m_ref = statistics.median(ours), statistics.median(ref)
        ratio = m_ours / m_ref
        rows.append(
            [
                what,
                f"{m_ours:,.0f} {unit}",
                f"{m_ref:,.0f} {unit}",
                f"{ratio:.3f}",
                "PASS" if ratio >= 0.95 else "FAIL",
            ]
        )
    body = "\n".join(
        [
            f"Command: `python benchmarks/bench_throughput.py --data {args.data} --out BENCHMARKS.md`",
            f"Machine: {machine()}",
            f"Model: wordllama StaticEmbedding (256 dims), normalised. Encoding: {len(big):,} texts "
            f"(Cranfield documents, repeated), batch 256. Training: {len(pairs.anchors):,} title -> body pairs, "
            f"batch {args.batch_size}, {args.epochs} epochs, no evaluation, same learning rate and schedule. "
            f"Medians of {args.repeats} interleaved repeats (alternating which side runs first).",
            "",
            md_table(["what", "simlab", "hand-written sentence-transformers", "ratio", "target >= 0.95"], rows),
        ]
    )
    return emit(args.out, HEADING, body)


if __name__ == "__main__":
    main()
