"""`simlab report`: one self-contained HTML page (and a markdown twin) for runs or sweeps.

`build_report(paths)` reads run folders and sweep folders (the runs a `sweep.json` lists, else the
run folders directly inside), in order, and collects:

- the runs: data, test items, model, run time, when each finished and the machine (meta.json);
- the comparison table: `compare.compare_runs` on the folders, the very comparison `simlab compare`
  makes (every quality metric of perquery.tsv, one family of p-values, Holm by default): one run's
  systems against its task's reference system (bm25 / overlap / prior), or each run's main system
  against the baseline run's (the first by default); every metric with its delta and corrected
  p-value, then the metrics.json columns of the terminal's table that the comparison does not hold;
- the speed table of speed.json (quality lost against exact search, QPS, latency, build time, size),
  the runs' notes, and the config differences against the baseline run;
- figures (matplotlib Agg, PNG bytes, drawn by `simlab.experiments.report_figures`): learning
  curves (train and validation loss, the per-epoch metric) overlaid across runs; the main metric
  against each swept axis; per task quality against QPS of the indexes, precision-recall and
  threshold curves (pairs), per-label F1 and AP (multilabel).

`Report.to_html()` is one page with inline CSS and figures as base64 data URLs (no external
URL); `Report.to_markdown(fig_dir)` writes the PNGs into `fig_dir`; `Report.save` writes both.
The tables are built by `simlab.experiments.report_tables`.
"""

from __future__ import annotations

import base64
import html
import json
import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml

from simlab import fsutil
from simlab.config import Experiment
from simlab.config.loading import flat
from simlab.errors import ConfigError, RunFolderError
from simlab.experiments.compare import compare_runs
from simlab.experiments.comparison import Comparison
from simlab.experiments.report_figures import Figure, fmt_value, report_figures
from simlab.experiments.report_tables import Table, comparison_table, run_notes, runs_table, speed_table
from simlab.experiments.runs_io import find_runs
from simlab.experiments.sweep import read_sweep
from simlab.tasks.base import Task
from simlab.tasks.skeleton import CHOSEN, run_task


@dataclass
class RunData:
    """What the report reads of one run folder."""

    name: str
    folder: Path
    config: dict[str, Any]
    metrics: dict[str, dict[str, float]]
    speed: dict[str, dict[str, float]]
    history: list[dict[str, Any]]
    meta: dict[str, Any] = field(default_factory=dict)
    chosen: dict[str, Any] | None = None  # the run's answer (metrics.json's `chosen`)
    swept: bool = False  # a point of a sweep folder (the metric-vs-axis figures plot only these)

    @property
    def task(self) -> str:
        return self.kind.name

    @cached_property
    def kind(self) -> Task:
        """The run's task (its rules: main metric and system, reference system, figures)."""
        return run_task(self.folder)

    @cached_property
    def cfg(self) -> Experiment:
        """The run's config, validated by its task's schema."""
        from simlab.tasks import load_config

        return load_config(self.folder / "config.yaml")

    @property
    def metric(self) -> str:
        """The task's main metric of metrics.json."""
        return self.kind.main_metric(self.cfg)

    @property
    def system(self) -> str:
        """The task's main system: the trained one when there is one, else the first."""
        return self.kind.main_system(list(self.metrics))


@dataclass
class Report:
    """A run's or a sweep's report; render it with `to_html`, `to_markdown` or `save`."""

    title: str
    task: str
    runs: list[str]
    baseline: str  # the comparison table's baseline system
    config_fields: list[str]  # dotted fields that differ from the baseline run
    config_values: dict[str, dict[str, Any]]  # run -> field -> value
    comparison: Comparison
    columns: list[str]  # metrics.json columns shown beside the comparison
    values: dict[str, dict[str, float]]  # comparison system -> column -> value
    figures: list[Figure] = field(default_factory=list)
    made_with: str = ""  # the command line that wrote the report, shown at the top
    baseline_run: str = ""  # several runs: the run whose config the others are diffed against
    same_metrics: dict[str, str] = field(default_factory=dict)  # compared metric -> its metrics.json name
    runs_table: Table = ([], [])
    machine: str = ""
    speed: Table = ([], [])
    speed_notes: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # the runs' notes (meta.json)
    preface: list[str] = field(default_factory=list)  # paragraphs shown under the title
    appendix: list[tuple[str, str]] = field(default_factory=list)  # (heading, preformatted text) after the figures

    def _sections(self) -> list[tuple[str, str, list[str], list[list[str]], list[str]]]:
        """(anchor, heading, table header, table rows, paragraphs) per text section, for both renderers."""
        diff_head = ["field", *[f"{r} (baseline)" if r == self.baseline_run else r for r in self.runs]]
        diff_rows = [[f, *(fmt_value(self.config_values[r].get(f)) for r in self.runs)] for f in self.config_fields]
        none = [] if diff_rows else ["No configuration difference: one run, or all runs share their config."]
        head, rows = comparison_table(self.comparison, self.columns, self.values, self.same_metrics)
        c = self.comparison
        sections = [
            ("runs", "Runs", *self.runs_table, [self.machine] if self.machine else []),
            ("comparison", "Comparison", head, rows, [c.legend(), *c.notes]),
        ]
        if self.speed[1]:
            sections.append(("speed", "Speed: exact and approximate search", *self.speed, self.speed_notes))
        if self.notes:
            sections.append(("notes", "Run notes", [], [], self.notes))
        sections.append(("config", "Configuration differences", diff_head, diff_rows, none))
        return sections

    def _intro(self) -> str:
        runs = f"{len(self.runs)} run(s): {', '.join(self.runs)}" if len(self.runs) <= 6 else f"{len(self.runs)} runs"
        base = f"baseline: {self.baseline}" + (f" (of run {self.baseline_run})" if len(self.runs) > 1 else "")
        return f"Task: {self.task}; {runs}; {base}."

    def _top(self) -> list[str]:
        return ([f"Regenerate with: {self.made_with}"] if self.made_with else []) + [self._intro(), *self.preface]

    def to_html(self) -> str:
        """One self-contained page: inline CSS, tables, figures as base64 PNG data URLs."""
        parts = [
            f"<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'><title>{_e(self.title)}</title>",
            f"<style>{CSS}</style></head><body><h1>{_e(self.title)}</h1>",
        ]
        top = self._top()
        if self.made_with:
            parts.append(f"<p class='cmd'>Regenerate with: <code>{_e(self.made_with)}</code></p>")
            top = top[1:]
        parts += [f"<p>{_e(t)}</p>" for t in top]
        for anchor, heading, head, rows, texts in self._sections():
            head, rows = _merge_p(head, rows) if anchor == "comparison" else (head, rows)
            parts.append(f"<h2 id='{anchor}'>{_e(heading)}</h2>" + (_html_table(head, rows) if rows else ""))
            tag = "li" if anchor == "notes" else "p"
            items = "".join(f"<{tag} class='note'>{_e(t)}</{tag}>" for t in texts)
            parts.append(f"<ul>{items}</ul>" if tag == "li" else items)
        parts.append("<h2 id='figures'>Figures</h2>")
        for f in self.figures:
            data = base64.b64encode(f.png).decode("ascii")
            parts.append(
                f"<figure><img src='data:image/png;base64,{data}' alt='{_e(f.title)}'>"
                f"<figcaption>{_e(f.title)}</figcaption></figure>"
            )
        for heading, text in self.appendix:
            parts.append(f"<h2>{_e(heading)}</h2><pre>{_e(text)}</pre>")
        parts.append("</body></html>\n")
        return "\n".join(parts)

    def to_markdown(self, fig_dir: Path) -> str:
        """The same report as markdown; writes the figures as `fig_dir/<name>.png` and links them
        relative to `fig_dir`'s parent folder (where `save` puts the markdown file)."""
        fig_dir = Path(fig_dir)
        top = self._top()
        lines = [f"# {self.title}", ""]
        if self.made_with:
            lines += ["Regenerate with:", "", "```", self.made_with, "```", ""]
            top = top[1:]
        lines += [t + "\n" for t in top]
        for anchor, heading, head, rows, texts in self._sections():
            bullets = [f"- {t}" for t in texts] if anchor == "notes" else [t + "\n" for t in texts]
            lines += ["", f"## {heading}", "", *([_md_table(head, rows), ""] if rows else []), *bullets]
        lines += ["", "## Figures", ""]
        for f in self.figures:
            fsutil.write_bytes(fig_dir / f"{f.name}.png", f.png)
            lines += [f"![{f.title}]({fig_dir.name}/{f.name}.png)", ""]
        for heading, text in self.appendix:
            lines += [f"## {heading}", "", "```text", text, "```", ""]
        return "\n".join(lines)

    def save(self, html_path: Path) -> None:
        """Write `x.html`, `x.md` and the markdown's figures `x_files/*.png`, each file atomically."""
        html_path = Path(html_path)
        md = self.to_markdown(html_path.with_name(f"{html_path.stem}_files"))
        fsutil.write_text(html_path.with_suffix(".md"), md)
        fsutil.write_text(html_path, self.to_html())


CSS = (
    "body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}"
    "table{border-collapse:collapse;margin:1em 0;font-size:13px}"
    "th,td{border:1px solid #ccc;padding:3px 6px;text-align:left;vertical-align:top}"
    "th{background:#f0f0f0;overflow-wrap:anywhere}"
    "td.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}th.n{text-align:right}"
    "tr:nth-child(even) td{background:#fafafa}figure{margin:1.5em 0}img{max-width:100%;border:1px solid #ddd}"
    "figcaption,.legend,.note{color:#555;font-size:13px}ul{padding-left:1.2em}.p{color:#777;font-size:11px}"
    "pre{background:#f6f6f6;padding:.6em;font-size:12px;overflow-x:auto}.cmd code{background:#f0f0f0;padding:2px 4px}"
)

_NUMBER = re.compile(r"^(baseline|exact|-|[-+]?[\d,]*\.?\d+(e[-+]?\d+)?( \([-+][\d.]+\))?†?|\d+/\d+/\d+|[\d.,]+ s)$")


def _numeric(rows: list[list[str]]) -> list[bool]:
    """Per column: every cell is a number (or `-`, `baseline`, `exact`): right-aligned."""
    width = max((len(r) for r in rows), default=0)
    return [i > 0 and all(i >= len(r) or _NUMBER.match(r[i] or "-") for r in rows) for i in range(width)]


def _merge_p(head: list[str], rows: list[list[str]]) -> tuple[list[str], list[list[str]]]:
    """The page's comparison table: each p-value column joined to the value column before it (a second line in
    its cell), so that a table of many metrics fits the page; the markdown keeps them apart."""
    keep = [i for i, h in enumerate(head) if not (i and h.startswith("p ") and head[i - 1].endswith("(Δ)"))]
    merged = []
    for row in rows:
        cells = list(row)
        for i in range(1, len(head)):
            if i not in keep and i < len(cells) and cells[i]:
                cells[i - 1] += f"\np = {cells[i]}"
        merged.append([cells[i] for i in keep if i < len(cells)])
    p_head = next((h.split(" ")[1] for h in head if h.startswith("p (")), "")
    return [f"{h}\np {p_head}".rstrip() if h.endswith("(Δ)") else h for h in (head[i] for i in keep)], merged


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _cell(text: str) -> str:
    """A cell's text; a second line (`\\n`: a p-value under its value) in small grey print."""
    first, _, second = str(text).partition("\n")
    return _e(first) + (f"<br><span class='p'>{_e(second)}</span>" if second else "")


def _html_table(header: list[str], rows: list[list[str]]) -> str:
    num = _numeric([[c.split("\n")[0] for c in row] for row in rows])
    cls = lambda i: " class='n'" if i < len(num) and num[i] else ""  # noqa: E731
    head = "".join(f"<th{cls(i)}>{_cell(h)}</th>" for i, h in enumerate(header))
    body = "".join(
        "<tr>" + "".join(f"<td{cls(i)}>{_cell(c)}</td>" for i, c in enumerate(row)) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _md_table(header: list[str], rows: list[list[str]]) -> str:
    esc = lambda s: str(s).replace("|", "\\|")  # noqa: E731
    num = _numeric(rows)
    align = "|" + "".join("---:|" if i < len(num) and num[i] else "---|" for i in range(len(header)))
    lines = ["| " + " | ".join(map(esc, header)) + " |", align]
    return "\n".join(lines + ["| " + " | ".join(map(esc, r)) + " |" for r in rows])


# --------------------------------------------------------------------------- reading


def read_run_data(folder: Path, name: str) -> RunData:
    """One run folder's config, metrics, speed and history, for the report.

    Raises:
        RunFolderError: a file is not valid JSON / YAML, or not a mapping where one is expected
            (the message names `file:line` and says to re-run).
    """
    config = _read(folder / "config.yaml", {}, lambda text: yaml.safe_load(text) or {})
    hist_file = folder / "history.jsonl"
    history = []
    if hist_file.is_file():
        for lineno, line in enumerate(_text(hist_file).splitlines(), start=1):
            if line.strip():
                history.append(_read(hist_file, {}, json.loads, line, lineno))
    metrics = _read(folder / "metrics.json", {}, json.loads)
    chosen = metrics.pop(CHOSEN, None)
    speed = _read(folder / "speed.json", {}, json.loads)
    meta = _read(folder / "meta.json", {}, json.loads)
    return RunData(name, folder, config, metrics, speed, history, meta, chosen)


def _text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise RunFolderError(f"{path}: not UTF-8 text ({e.reason}); the run folder is damaged, re-run it.") from None


def _read(path: Path, default: dict, parse: Any, text: str | None = None, lineno: int = 0) -> dict:
    """`path` (or one line of it, `text` at `lineno`) parsed with `parse`: a mapping, or `default` when absent."""
    if text is None and not path.is_file():
        return default
    try:
        value = parse(_text(path) if text is None else text)
    except (json.JSONDecodeError, yaml.YAMLError) as e:
        line = lineno or getattr(e, "lineno", None) or getattr(getattr(e, "problem_mark", None), "line", -1) + 1
        reason = getattr(e, "msg", None) or getattr(e, "problem", None) or type(e).__name__
        kind = path.suffix[1:].upper()
        raise RunFolderError(
            f"{path}:{line}: not valid {kind} ({reason}); the run folder is damaged, re-run it."
        ) from None
    if not isinstance(value, dict):
        raise RunFolderError(
            f"{path}{f':{lineno}' if lineno else ''}: a {type(value).__name__}, not a mapping; the run folder is "
            "damaged, re-run it."
        )
    return value


def collect_runs(paths: Path | list[Path]) -> tuple[list[RunData], dict[str, list]]:
    """The runs of run or sweep folders, in order, and the sweeps' axes ({} for run folders).

    Runs listed in a `sweep.json` but without a finished folder (failed, pending) are left out.
    """
    runs: list[RunData] = []
    axes: dict[str, list] = {}
    for path in [paths] if isinstance(paths, str | Path) else paths:
        path = Path(path)
        record = {} if (path / "meta.json").is_file() else read_sweep(path)
        folders = [path / r["name"] for r in record.get("runs", []) if (path / r["name"] / "meta.json").is_file()]
        found = [read_run_data(f, f.name) for f in folders or find_runs(path)]
        for run in found if record.get("axes") else []:
            run.swept = True
        runs += found
        axes |= dict(record.get("axes", {}))
    return runs, axes


def build_report(paths: Path | list[Path], baseline: str | None = None) -> Report:
    """Collect the report of run or sweep folders (see the module docstring).

    Args:
        paths: A run folder or a sweep folder, or several (their runs in the given order: a baseline run
            and a sweep made against it).
        baseline: Several runs: the baseline run's name (default: the first). One run: the baseline
            system (default: the task's reference system, bm25 / overlap / prior).

    Raises:
        RunFolderError: a path is not a run or sweep folder (see `runs_io.find_runs`), or the runs mix tasks.
        ConfigError: `baseline` names no run (or system); the message lists them.
    """
    paths = [paths] if isinstance(paths, str | Path) else list(paths)
    runs, axes = collect_runs(paths)
    names = [r.name for r in runs]
    single = len(runs) == 1
    if not single and baseline is not None and baseline not in names:
        raise ConfigError(
            f"--baseline {baseline!r} is not a run of {', '.join(map(str, paths))}; choose one of: {', '.join(names)}."
        )
    base = runs[0] if single or baseline is None else runs[names.index(baseline)]
    tasks = sorted({r.task for r in runs})
    if len(tasks) > 1:
        raise RunFolderError(f"{', '.join(map(str, paths))} mix tasks ({', '.join(tasks)}); report one task at a time.")
    flats = {r.name: flat(r.config) for r in runs}
    ref_flat = flats[base.name]
    fields = sorted({k for f in flats.values() for k in f.keys() | ref_flat.keys() if f.get(k) != ref_flat.get(k)})
    # the comparison `simlab compare` makes of these folders: the same metrics, family and correction
    comparison = compare_runs([r.folder for r in runs], baseline=baseline if single else base.name)
    if single:
        values = dict(base.metrics)
    else:  # systems "<run label>/<system>": each run's metrics.json line of its main system
        by_run = {r.name: r for r in runs}
        values = {}
        for key in comparison.systems:
            label, _, system = key.rpartition("/")
            run = by_run.get(Path(label).name)
            values[key] = run.metrics.get(system, {}) if run is not None else {}
    shown = {k for m in base.metrics.values() for k in m}
    speed, speed_notes = speed_table(runs)
    table, machine = runs_table(runs)
    return Report(
        title=f"simlab report: {Path(paths[0]).resolve().name}",
        task=tasks[0],
        runs=[base.name, *[n for n in names if n != base.name]],
        baseline=comparison.baseline,
        config_fields=fields,
        config_values=flats,
        comparison=comparison,
        columns=[c for c in base.kind.columns(base.cfg) if c in shown],
        values=values,
        figures=report_figures(runs, axes, base.kind),
        baseline_run=base.name,
        same_metrics=dict(base.kind.same_metrics),
        runs_table=table,
        machine=machine,
        speed=speed,
        speed_notes=speed_notes,
        notes=run_notes(runs),
    )
