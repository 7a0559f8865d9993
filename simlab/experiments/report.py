"""Render a run's results: the markdown `report.md` and the terminal table.

Both render the same rows: one per system, every metric in the config, and for each
approximate index the quality lost against exact search and its speed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from simlab.experiments.runner import RunSummary

SPEED_COLUMNS = [
    ("overlap@10", "top10 ∩ exact", "{:.3f}"),
    ("qps_single", "QPS 1", "{:,.0f}"),
    ("qps_batched", "QPS batch", "{:,.0f}"),
    ("p50_ms", "p50 ms", "{:.3f}"),
    ("p95_ms", "p95 ms", "{:.3f}"),
    ("build_seconds", "build s", "{:.2f}"),
    ("size_mb", "MB", "{:.1f}"),
]


def quality_rows(summary: RunSummary) -> tuple[list[str], list[list[str]]]:
    metrics = summary.config.eval.metrics
    rows = [[name] + [f"{summary.metrics[name][m]:.4f}" for m in metrics] for name in summary.metrics]
    return ["system", *metrics], rows


def speed_rows(summary: RunSummary) -> tuple[list[str], list[list[str]]]:
    main = summary.config.eval.metrics[0]
    header = ["system", f"Δ {main}"] + [title for _, title, _ in SPEED_COLUMNS]
    rows = []
    for name, stats in summary.speed.items():
        delta = stats.get(f"delta_{main}")
        row = [name, "exact" if delta is None else f"{delta:+.4f}"]
        row += [fmt.format(stats[key]) if key in stats else "-" for key, _, fmt in SPEED_COLUMNS]
        rows.append(row)
    return header, rows


def md_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def history_section(summary: RunSummary, keys: list[str], title: str = "Training (val every epoch)") -> list[str]:
    """The per-epoch table of `keys` and the learning curves (curves.png), or nothing without a history."""
    if not summary.history:
        return []
    rows = [[str(h.get("epoch"))] + [fmt_cell(h.get(k)) for k in keys] for h in summary.history]
    return ["", f"## {title}", "", md_table(["epoch", *keys], rows), "", "![learning curves](curves.png)"]


def closing_section(summary: RunSummary) -> list[str]:
    """The run's notes (if any) and its run time: the end of every report."""
    notes = ["", "## Notes", "", *(f"- {n}" for n in summary.notes)] if summary.notes else []
    return [*notes, "", f"Run time: {summary.seconds:.1f} s.", ""]


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


def _tables(summary: RunSummary) -> list[tuple[str, tuple[list[str], list[list[str]]]]]:
    """(title, (header, rows)) of every table of a run, by task."""
    if summary.config.task == "multilabel":
        from simlab.experiments.multilabel_report import metric_rows

        title = f"{summary.config.name}: {summary.n_test_queries} test items (thresholds tuned on val, frozen)"
        return [(title, metric_rows(summary))]
    if summary.config.task == "pairs":
        return [
            (
                f"{summary.config.name}: {summary.n_test_queries} test pairs (threshold tuned on val, frozen)",
                pair_rows(summary),
            )
        ]
    return [
        (f"{summary.config.name}: {summary.n_test_queries} test queries", quality_rows(summary)),
        ("exact vs approximate search", speed_rows(summary)),
    ]


def render_markdown(summary: RunSummary) -> str:
    if summary.config.task == "multilabel":
        from simlab.experiments.multilabel_report import render_multilabel

        return render_multilabel(summary)
    if summary.config.task == "pairs":
        return _render_pairs(summary)
    cfg = summary.config
    parts = [
        f"# {cfg.name}",
        "",
        f"Collection `{cfg.data.path}`, split `{cfg.data.test_split}`: {summary.n_test_queries} test queries, "
        f"every system ranked to depth {cfg.eval.k}. Model `{cfg.model.name}` ({cfg.model.towers} towers, "
        f"normalize={cfg.model.normalize}).",
        "",
        "## Quality",
        "",
        md_table(*quality_rows(summary)),
        "",
        "## Exact vs approximate search",
        "",
        md_table(*speed_rows(summary)),
        "",
        f"Δ: {summary.config.eval.metrics[0]} minus exact search with the same model. top10 ∩ exact: share of "
        "the exact top 10 that the index returns. QPS 1: one query per call; QPS batch: all test queries "
        "in one call. p50/p95: latency of one query.",
    ]
    keys = [k for k in summary.history[0] if k != "epoch"] if summary.history else []
    parts += history_section(summary, keys, "Training")
    return "\n".join(parts + closing_section(summary))


def _render_pairs(summary: RunSummary) -> str:
    cfg = summary.config
    parts = [
        f"# {cfg.name}",
        "",
        f"Pairs `{cfg.data.path}`: {summary.n_test_queries} test pairs. Model `{cfg.model.name}`, "
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


def fmt_cell(v) -> str:
    """A table cell: `-` for missing, 4 decimals for floats (scientific below 1e-3, e.g. learning rates)."""
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.2e}" if 0 < abs(v) < 1e-3 else f"{v:.4f}"
    return str(v)


def print_tables(summary: RunSummary) -> None:
    """The quality and speed tables on the terminal (rich)."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if not console.is_terminal:  # piped or logged: don't squeeze the tables into 80 columns
        console = Console(width=160)
    for title, (header, rows) in _tables(summary):
        table = Table(title=title)
        for i, h in enumerate(header):
            table.add_column(h, justify="left" if i == 0 else "right")
        for r in rows:
            table.add_row(*r)
        console.print(table)
