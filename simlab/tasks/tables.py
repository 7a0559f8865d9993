"""Pieces of every run's report.md: markdown tables, cells, the training history, the closing notes."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from simlab.tasks.base import RunSummary, Table


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


def chosen_table(summary: RunSummary) -> Table | None:
    """The run's answer as a one-row table (first on the terminal and in report.md): the system chosen by the
    task's main val metric, that val score, and its test metrics."""
    chosen = summary.chosen
    if not chosen:
        return None
    metric = chosen["by"].removeprefix("val_")
    shown = summary.task.columns(summary.config)  # the metrics a report shows per run
    test = {k: chosen["test"][k] for k in shown if isinstance(chosen["test"].get(k), float)}
    header = ["system", f"val {metric}", *(f"test {k}" for k in test)]
    row = [chosen["system"], fmt_cell(chosen["val"]), *(fmt_cell(v) for v in test.values())]
    return f"Chosen: the best val {metric} (test is never used to choose)", header, [row]


def with_chosen(summary: RunSummary, report: str) -> str:
    """report.md with the chosen system's table after its title line."""
    table = chosen_table(summary)
    if table is None:
        return report
    title, rest = report.split("\n", 1) if "\n" in report else (report, "")
    return "\n".join([title, "", f"## {table[0]}", "", md_table(table[1], table[2]), rest])
