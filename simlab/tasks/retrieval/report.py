"""report.md and the terminal tables of retrieval runs (dense and sparse): quality, then exact vs
approximate search with the speed of every index."""

from __future__ import annotations

from typing import TYPE_CHECKING

from simlab.tasks.tables import closing_section, history_section, md_table

if TYPE_CHECKING:
    from simlab.tasks.base import RunSummary, Table

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


def render(summary: RunSummary) -> str:
    """report.md of a retrieval run."""
    cfg = summary.config
    parts = [
        f"# {cfg.name}",
        "",
        f"Collection `{cfg.data.path}`, split `{cfg.data.test_split}`: {summary.n_test} test queries, "
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


def tables(summary: RunSummary) -> list[Table]:
    header, rows = quality_rows(summary)
    speed_header, speed = speed_rows(summary)
    return [
        (f"{summary.config.name}: {summary.n_test} test queries", header, rows),
        ("exact vs approximate search", speed_header, speed),
    ]
