"""A finished run's tables on the terminal (rich): its answer (`chosen`), then the task's own tables (`Task.tables`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from simlab.tasks.base import RunSummary


def print_tables(summary: RunSummary) -> None:
    """The run's tables on the terminal (rich); 160 columns wide when piped or logged."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if not console.is_terminal:  # piped or logged: don't squeeze the tables into 80 columns
        console = Console(width=160)
    from simlab.tasks.tables import chosen_table

    chosen = chosen_table(summary)
    for title, header, rows in [chosen, *summary.task.tables(summary)] if chosen else summary.task.tables(summary):
        table = Table(title=title)
        for i, h in enumerate(header):
            table.add_column(h, justify="left" if i == 0 else "right")
        for r in rows:
            table.add_row(*r)
        console.print(table)
