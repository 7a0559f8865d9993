"""Pieces of every run's report.md: markdown tables, cells, the training history, the closing notes."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from simlab.tasks.base import RunSummary


def md_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def fmt_cell(v) -> str:
    """A table cell: `-` for missing, 4 decimals for floats (scientific below 1e-3, e.g. learning rates)."""
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.2e}" if 0 < abs(v) < 1e-3 else f"{v:.4f}"
    return str(v)


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
