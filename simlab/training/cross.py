"""Training the `cross` system of a pairs run: a transformer that reads both records of a pair together.

A siamese model embeds each record alone; a cross-encoder attends across the two, which is what
fine-tuned matchers such as Ditto do. It is a sentence-transformers `CrossEncoder` fine-tuned by
its own `CrossEncoderTrainer` with `BinaryCrossEntropyLoss` on the labelled pairs, for a fixed
number of epochs (linear warm-up and decay; no per-epoch evaluation, which would cost as much as
a third of an epoch on a CPU).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from simlab.training.pairs import PairSet
from simlab.training.trainer import TrainResult, epoch_history, fit


def field_cut(tokenizer, n: int | None) -> Callable[[str], str]:
    """`value -> value` cut after its first `n` tokens of `tokenizer` (a fast tokenizer: the cut falls at the
    n-th token's end in the original text, so the value keeps its spelling); no cut when `n` is None."""
    if not n:
        return lambda value: value

    def cut(value: str) -> str:
        offsets = tokenizer(value, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
        return value if len(offsets) <= n else value[: offsets[n - 1][1]]

    return cut


def record_texts(pairs: PairSet, names: list[str], cut: Callable[[str], str] = str) -> list[list[str]]:
    """Each pair as [left, right], a record serialised as Ditto does, `COL <field> VAL <value>` for each of
    the fields `names`, each value passed through `cut` (a record's text when its field values are not known)."""

    def text(values: tuple[str, ...], joined: str) -> str:
        return " ".join(f"COL {n} VAL {cut(v)}" for n, v in zip(names, values)) if values else joined

    left = pairs.left_values or [()] * len(pairs)
    right = pairs.right_values or [()] * len(pairs)
    return [[text(lv, lt), text(rv, rt)] for lv, rv, lt, rt in zip(left, right, pairs.left, pairs.right)]


def train_cross(model, pairs: PairSet, names: list[str], cfg, seed: int, work_dir: Path) -> TrainResult:
    """Fine-tune the CrossEncoder `model` in place on `pairs` with fields `names` (cfg: the `cross` section);
    the epochs' train losses and the wall seconds."""
    from datasets import Dataset
    from sentence_transformers.cross_encoder import CrossEncoderTrainer, CrossEncoderTrainingArguments
    from sentence_transformers.cross_encoder.losses import BinaryCrossEntropyLoss

    texts = record_texts(pairs, names, field_cut(model.tokenizer, cfg.field_tokens))
    dataset = Dataset.from_dict(
        {"left": [t[0] for t in texts], "right": [t[1] for t in texts], "label": [float(y) for y in pairs.labels]}
    )
    steps = -(-len(dataset) // cfg.batch_size)
    args = CrossEncoderTrainingArguments(
        output_dir=str(work_dir),
        num_train_epochs=cfg.epochs,
        per_device_train_batch_size=cfg.batch_size,
        learning_rate=cfg.learning_rate,
        warmup_steps=0.1,  # a float: the share of the steps
        weight_decay=0.01,
        lr_scheduler_type="linear",
        seed=seed,
        eval_strategy="no",
        save_strategy="no",
        logging_steps=max(1, steps // 4),
        report_to="none",
        use_cpu=True,
    )
    trainer = CrossEncoderTrainer(model=model, args=args, train_dataset=dataset, loss=BinaryCrossEntropyLoss(model))
    result = TrainResult(n_pairs=len(dataset))
    history = epoch_history(result, lambda metrics: {})
    result.seconds = fit(trainer, history)
    return result


def cross_scores(model, pairs: PairSet, names: list[str], field_tokens: int | None = None) -> np.ndarray:
    """The match logit of every pair (higher = more alike); `field_tokens`: as the model was trained."""
    import torch

    from simlab.console import wants_bar

    logits = model.predict(
        record_texts(pairs, names, field_cut(model.tokenizer, field_tokens)),
        batch_size=64,
        activation_fn=torch.nn.Identity(),
        show_progress_bar=wants_bar(len(pairs), 5000),
        convert_to_numpy=True,
    )
    return np.asarray(logits, dtype=float).reshape(-1)
