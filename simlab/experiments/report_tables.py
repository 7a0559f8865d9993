"""The tables of `simlab report` (`simlab.experiments.html_report`), as header + rows of text cells.

- `runs_table`: what each run was: its data, test items, model, wall time and when it finished;
- `comparison_table`: every system against the baseline on every metric `simlab compare` tests
  (the same `Comparison`), each with its delta, corrected p-value, and W/T/L on the first metric,
  then the metrics.json columns the terminal shows that the comparison does not already hold;
- `speed_table`: each index's quality lost against exact search, QPS (one query and batched),
  latency, build time and size, and for learned sparse models encoding speed (speed.json);
- `run_notes`: the notes of meta.json (what the data and the training were), once when all runs share one.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from simlab.experiments.report_figures import fmt_value

if TYPE_CHECKING:
    from simlab.experiments.comparison import Comparison
    from simlab.experiments.html_report import RunData

Table = tuple[list[str], list[list[str]]]

SPEED_COLUMNS = [
    ("overlap@10", "top10 ∩ exact", "{:.3f}"),
    ("qps_single", "QPS 1", "{:,.0f}"),
    ("qps_batched", "QPS batch", "{:,.0f}"),
    ("p50_ms", "p50 ms", "{:.3f}"),
    ("p95_ms", "p95 ms", "{:.3f}"),
    ("build_seconds", "build s", "{:.2f}"),
    ("size_mb", "MB", "{:.2f}"),
    ("docs_per_second", "docs/s encoded", "{:,.0f}"),
    ("encode_search_p50_ms", "encode+search p50 ms", "{:.2f}"),
    ("query_active_dims", "query dims", "{:.1f}"),
    ("document_active_dims", "doc dims", "{:.1f}"),
]


def shown_path(path: Any) -> str:
    """A data path as the report shows it: relative to the working folder when under it or beside it.

    `../shared/data/x` rather than the machine's absolute path of the project's neighbour folder.
    """
    if not path:
        return "-"
    try:
        near = Path(path).is_relative_to(Path.cwd().parent)
        return os.path.relpath(Path(path), Path.cwd()) if near else str(path)
    except ValueError:
        return str(path)


def _model(run: RunData) -> str:
    model = run.config.get("model", {}) or {}
    name = model.get("name") or model.get("backbone") or "-"
    return f"{name} (from {model['preload']})" if model.get("preload") else str(name)


def runs_table(runs: list[RunData]) -> tuple[Table, str]:
    """One row per run: its answer (the system chosen by val), data, test items, model, seconds, finished; and the
    machine(s) they ran on."""
    header = ["run", "chosen (by val)", "data", "test items", "model", "run time", "finished"]
    rows = []
    for r in runs:
        n_test = next((v for k, v in r.meta.items() if k.startswith("n_test_")), None)
        seconds = r.meta.get("seconds")
        rows.append(
            [
                r.name,
                _chosen(r),
                shown_path(r.meta.get("data")),
                "-" if n_test is None else f"{n_test:,}",
                _model(r),
                "-" if seconds is None else f"{seconds:,.1f} s",
                str(r.meta.get("finished", "-")),
            ]
        )
    machines = sorted({str(r.meta["machine"]) for r in runs if r.meta.get("machine")})
    machine = "; ".join(machines) if machines else "not recorded (a run made before simlab recorded it)"
    return (header, rows), f"Machine: {machine}."


def _chosen(r: RunData) -> str:
    c = r.chosen
    return f"{c['system']} ({c['by'].replace('_', ' ', 1)} {c['val']:.4f})" if c else "-"


def comparison_table(c: Comparison, columns: list[str], values: dict[str, dict], same: dict[str, str]) -> Table:
    """Systems x (every compared metric: value (Δ) and p) + W/T/L on the first + the other metrics.json columns.

    `same` names a compared metric's metrics.json twin (`correct` is `accuracy`): it is labelled by
    that name and its column is not shown twice.
    """
    label = lambda m: same.get(m, m)  # noqa: E731
    p_head = "p" if c.correction == "none" else f"p ({c.correction})"
    head = ["system"]
    for m in c.metrics:
        head += [f"{label(m)} (Δ)", f"{p_head} {label(m)}"]
    first = c.metrics[0]
    compared = {label(m) for m in c.metrics} | set(c.metrics)
    extra = [k for k in columns if k not in compared]
    head += [f"W/T/L {label(first)}", *extra]
    rows = []
    for s in c.systems:
        row = [f"{s} (baseline)" if s == c.baseline else s]
        for m in c.metrics:
            r = None if s == c.baseline else c.result(s, m)
            row += [c.cell(s, m), "" if r is None else _fmt_p(r.p_corrected)]
        r = None if s == c.baseline else c.result(s, first)
        row.append("baseline" if r is None else f"{r.wins}/{r.ties}/{r.losses}")
        row += [fmt_value(values.get(s, {}).get(k)) for k in extra]
        rows.append(row)
    return head, rows


def _fmt_p(p: float) -> str:
    return f"{p:.4f}" if p >= 1e-4 else f"{p:.1e}"


def speed_table(runs: list[RunData]) -> tuple[Table, list[str]]:
    """Every index of every run with speed.json: quality lost against exact search, then `SPEED_COLUMNS`
    present in any; and the notes that explain the columns (empty table when no run has speed.json)."""
    speed = {(f"{r.name}/{s}" if len(runs) > 1 else s): (stats, r.metric) for r in runs for s, stats in r.speed.items()}
    if not speed:
        return ([], []), []
    present = [c for c in SPEED_COLUMNS if any(c[0] in stats for stats, _ in speed.values())]
    main = runs[0].metric
    header = ["system", f"Δ {main} vs exact", *[title for _, title, _ in present]]
    rows, slower_batched = [], []
    for name, (stats, metric) in speed.items():
        delta = stats.get(f"delta_{metric}")
        row = [name, "exact" if delta is None else f"{delta:+.4f}"]
        row += [fmt.format(stats[key]) if key in stats else "-" for key, _, fmt in present]
        rows.append(row)
        if stats.get("qps_batched", float("inf")) < stats.get("qps_single", 0):
            slower_batched.append(name)
    notes = [
        f"Δ {main} vs exact: the index's {main} minus that of exact search with the same model. top10 ∩ exact: the "
        "share of exact search's top 10 the index also returns. QPS 1: one query per call; QPS batch: all test "
        "queries in one call; p50/p95: per-query latency of one call; build: seconds to build the index; MB: its size."
    ]
    if slower_batched:
        notes.append(
            f"QPS batch is below QPS 1 for {', '.join(slower_batched)}: on a collection this small, a batched call "
            "is dominated by its fixed per-call cost (such as starting faiss's OpenMP threads), which a single query "
            "on a small index does not pay; on larger collections batching is faster."
        )
    return (header, rows), notes


def run_notes(runs: list[RunData]) -> list[str]:
    """meta.json's notes: those every run has once, then each run's own, prefixed by its name."""
    notes = [list(r.meta.get("notes", []) or []) for r in runs]
    if len(runs) == 1:
        return notes[0]
    shared = [n for n in notes[0] if all(n in other for other in notes[1:])]
    out = [f"All runs: {n}" for n in shared]
    for r, own in zip(runs, notes):
        out += [f"{r.name}: {n}" for n in own if n not in shared]
    return out
