"""report.md and the terminal table of pair runs (siamese matching and context vs definition):
every system at its val threshold, frozen for test."""

from __future__ import annotations

from typing import TYPE_CHECKING

from simlab.tasks.tables import closing_section, history_section, md_table

if TYPE_CHECKING:
    from simlab.tasks.base import RunSummary, Table

PAIR_COLUMNS = [
    ("accuracy", "Acc"),
    ("f1", "F1"),
    ("pos_acc", "P Acc"),
    ("neg_acc", "N Acc"),
    ("avg_acc", "Avg Acc"),
    ("precision", "precision"),
    ("recall", "recall"),
    ("ap", "AP"),
    ("threshold", "thr (val)"),
    ("val_f1", "val F1"),
]


def pair_rows(summary: RunSummary) -> tuple[list[str], list[list[str]]]:
    rows = [[name] + [f"{m[k]:.4f}" for k, _ in PAIR_COLUMNS] for name, m in summary.metrics.items()]
    return ["system", *[title for _, title in PAIR_COLUMNS]], rows


def render(summary: RunSummary) -> str:
    """report.md of a pairs or definitions run."""
    cfg = summary.config
    parts = [
        f"# {cfg.name}",
        "",
        f"Pairs `{cfg.data.path}`: {summary.n_test} test pairs. Model `{cfg.model.name}`, "
        + (
            f"a {cfg.head.kind} head with BCE"
            if getattr(cfg, "head", None)
            else f"contrastive loss (margin {cfg.train.margin}, {cfg.train.distance})"
        )
        + f", best epoch by val {cfg.train.best_by}. Every system's threshold is the "
        f"{getattr(cfg.train, 'threshold_by', 'f1')}-optimal threshold on val, frozen for test.",
        "",
        "## Test",
        "",
        md_table(*pair_rows(summary)),
    ]
    parts += history_section(
        summary, ["train_loss", "val_loss", "val_f1", "val_pos_acc", "val_neg_acc", "val_threshold", "seconds"]
    )
    return "\n".join(parts + closing_section(summary))


def tables(summary: RunSummary) -> list[Table]:
    title = f"{summary.config.name}: {summary.n_test} test pairs (threshold tuned on val, frozen)"
    return [(title, *pair_rows(summary))]
