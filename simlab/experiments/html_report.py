"""`simlab report`: one self-contained HTML page (and a markdown twin) for a run or a sweep.

`build_report(path)` reads a run folder, or a sweep folder (the runs its `sweep.json` lists,
else the run folders directly inside it), and collects:

- the config differences against the baseline run (the first by default): both configs
  flattened to dotted fields, and the fields whose values differ;
- the comparison table (`compare.compare` on the per-query scores of `perquery.tsv`): for
  retrieval on the main metric (the first of `eval.metrics`, e.g. `ndcg@10`); for pairs on F1
  (from the per-pair TP/FP/FN counts; tested by randomization over pairs), with precision,
  recall and the threshold from `metrics.json` beside it. A single run compares its
  systems against the reference system (bm25 / overlap); a sweep compares the main system
  (trained.flat / trained) of every run against the baseline run's;
- figures (matplotlib Agg, PNG bytes, drawn by `simlab.experiments.report_figures`): learning
  curves overlaid across runs; the main metric against each swept axis (sweep only); for
  retrieval, quality against QPS of the exact and approximate indexes (`speed.json`); for
  pairs, precision-recall and threshold curves of the trained system; for multilabel, the
  per-label F1 and AP of the trained system on test (`per_label.json`), and the comparison
  on micro F1 from the per-item TP/FP/FN counts.

`Report.to_html()` is one page with inline CSS and figures as base64 data URLs (no external
URL); `Report.to_markdown(fig_dir)` writes the PNGs into `fig_dir`; `Report.save` writes both.
"""

from __future__ import annotations

import base64
import html
import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml

from simlab import fsutil
from simlab.config import Experiment
from simlab.config.loading import flat
from simlab.errors import ConfigError, RunFolderError
from simlab.experiments.compare import compare, load_systems
from simlab.experiments.comparison import Comparison
from simlab.experiments.report_figures import Figure, fmt_value, report_figures
from simlab.experiments.runs_io import find_runs
from simlab.experiments.sweep import read_sweep
from simlab.tasks.base import Task
from simlab.tasks.skeleton import run_task


@dataclass
class RunData:
    """What the report reads of one run folder."""

    name: str
    folder: Path
    config: dict[str, Any]
    metrics: dict[str, dict[str, float]]
    speed: dict[str, dict[str, float]]
    history: list[dict[str, Any]]

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
    baseline: str
    config_fields: list[str]  # dotted fields that differ from the baseline run
    config_values: dict[str, dict[str, Any]]  # run -> field -> value
    comparison: Comparison
    columns: list[str]  # metrics.json columns shown beside the comparison
    values: dict[str, dict[str, float]]  # comparison system -> column -> value
    figures: list[Figure] = field(default_factory=list)
    made_with: str = ""  # the command line that wrote the report, shown under the title

    def _sections(self) -> list[tuple[str, str, list[str], list[list[str]], list[str]]]:
        """(anchor, heading, table header, table rows, paragraphs) per text section, for both renderers."""
        diff_head = ["field", *[f"{r} (baseline)" if r == self.baseline else r for r in self.runs]]
        diff_rows = [[f, *(fmt_value(self.config_values[r].get(f)) for r in self.runs)] for f in self.config_fields]
        none = [] if diff_rows else ["No configuration difference: one run, or all runs share their config."]
        c, metric = self.comparison, self.comparison.metrics[0]
        head = ["system", f"{metric} (Δ)", "W/T/L", f"p ({c.correction})", *self.columns]
        rows = []
        for s in c.systems:
            r = None if s == c.baseline else c.result(s, metric)
            wtl = "baseline" if r is None else f"{r.wins}/{r.ties}/{r.losses}"
            p = "" if r is None else f"{r.p_corrected:.4f}"
            rows.append(
                [s, c.cell(s, metric), wtl, p, *[fmt_value(self.values.get(s, {}).get(k)) for k in self.columns]]
            )
        return [
            ("config", "Configuration differences", diff_head, diff_rows, none),
            ("comparison", "Comparison", head, rows, [c.legend(), *c.notes]),
        ]

    def _intro(self) -> str:
        intro = f"Task: {self.task}; {len(self.runs)} run(s): {', '.join(self.runs)}; baseline: {self.baseline}."
        return intro + (f" Made with: {self.made_with}" if self.made_with else "")

    def to_html(self) -> str:
        """One self-contained page: inline CSS, tables, figures as base64 PNG data URLs."""
        parts = [
            f"<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'><title>{_e(self.title)}</title>",
            f"<style>{CSS}</style></head><body><h1>{_e(self.title)}</h1><p>{_e(self._intro())}</p>",
        ]
        for anchor, heading, head, rows, texts in self._sections():
            parts.append(f"<h2 id='{anchor}'>{_e(heading)}</h2>" + (_html_table(head, rows) if rows else ""))
            parts += [f"<p class='note'>{_e(t)}</p>" for t in texts]
        parts.append("<h2 id='figures'>Figures</h2>")
        for f in self.figures:
            data = base64.b64encode(f.png).decode("ascii")
            parts.append(
                f"<figure><img src='data:image/png;base64,{data}' alt='{_e(f.title)}'>"
                f"<figcaption>{_e(f.title)}</figcaption></figure>"
            )
        parts.append("</body></html>\n")
        return "\n".join(parts)

    def to_markdown(self, fig_dir: Path) -> str:
        """The same report as markdown; writes the figures as `fig_dir/<name>.png` and links them
        relative to `fig_dir`'s parent folder (where `save` puts the markdown file)."""
        fig_dir = Path(fig_dir)
        lines = [f"# {self.title}", "", self._intro()]
        for _, heading, head, rows, texts in self._sections():
            lines += ["", f"## {heading}", "", *([_md_table(head, rows), ""] if rows else []), *texts]
        lines += ["", "## Figures", ""]
        for f in self.figures:
            fsutil.write_bytes(fig_dir / f"{f.name}.png", f.png)
            lines += [f"![{f.title}]({fig_dir.name}/{f.name}.png)", ""]
        return "\n".join(lines)

    def save(self, html_path: Path) -> None:
        """Write `x.html`, `x.md` and the markdown's figures `x_files/*.png`, each file atomically."""
        html_path = Path(html_path)
        md = self.to_markdown(html_path.with_name(f"{html_path.stem}_files"))
        fsutil.write_text(html_path.with_suffix(".md"), md)
        fsutil.write_text(html_path, self.to_html())


CSS = (
    "body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}"
    "table{border-collapse:collapse;margin:1em 0;font-size:14px}"
    "th,td{border:1px solid #ccc;padding:4px 8px;text-align:left}th{background:#f0f0f0}"
    "tr:nth-child(even) td{background:#fafafa}figure{margin:1.5em 0}img{max-width:100%;border:1px solid #ddd}"
    "figcaption,.legend,.note{color:#555;font-size:13px}"
)


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _html_table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _md_table(header: list[str], rows: list[list[str]]) -> str:
    esc = lambda s: str(s).replace("|", "\\|")  # noqa: E731
    lines = ["| " + " | ".join(map(esc, header)) + " |", "|" + "---|" * len(header)]
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
    speed = _read(folder / "speed.json", {}, json.loads)
    return RunData(name, folder, config, metrics, speed, history)


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


def collect_runs(path: Path) -> tuple[list[RunData], dict[str, list]]:
    """The runs of a run or sweep folder, and the sweep's axes ({} for a run folder).

    Runs listed in `sweep.json` but without a finished folder (failed, pending) are left out.
    """
    path = Path(path)
    record = {} if (path / "meta.json").is_file() else read_sweep(path)
    folders = [path / r["name"] for r in record.get("runs", []) if (path / r["name"] / "meta.json").is_file()]
    folders = folders or find_runs(path)
    return [read_run_data(f, f.name) for f in folders], dict(record.get("axes", {}))


def build_report(path: Path, baseline: str | None = None) -> Report:
    """Collect a run folder's or a sweep folder's report (see the module docstring).

    Args:
        path: A run folder, or a sweep folder.
        baseline: A sweep: the baseline run's name (default: the first run). A run folder: the
            baseline system (default: bm25 for retrieval, overlap for pairs, else the first).

    Raises:
        RunFolderError: `path` is not a run or sweep folder (see `runs_io.find_runs`).
        ConfigError: `baseline` names no run (or system); the message lists them.
    """
    runs, axes = collect_runs(path)
    names = [r.name for r in runs]
    single = len(runs) == 1
    if not single and baseline is not None and baseline not in names:
        raise ConfigError(f"--baseline {baseline!r} is not a run of {path}; choose one of: {', '.join(names)}.")
    base = runs[0] if single or baseline is None else runs[names.index(baseline)]
    tasks = sorted({r.task for r in runs})
    if len(tasks) > 1:
        raise RunFolderError(f"{path} mixes tasks ({', '.join(tasks)}); report one task at a time.")
    task = tasks[0]
    flats = {r.name: flat(r.config) for r in runs}
    ref_flat = flats[base.name]
    fields = sorted({k for f in flats.values() for k in f.keys() | ref_flat.keys() if f.get(k) != ref_flat.get(k)})
    # pairs: F1 from the per-pair TP/FP/FN counts of perquery.tsv; multilabel: micro F1 from the per-item counts
    metric = base.kind.compare_metric(base.cfg)
    folders = [base.folder, *[r.folder for r in runs if r is not base]]
    if single:
        systems = load_systems(folders, metrics=[metric])
        reference = base.kind.reference_system
        ref = baseline or (reference if reference in systems else next(iter(systems)))
        if ref not in systems:
            raise ConfigError(f"--baseline {ref!r} is not a system of {path}; choose one of: {', '.join(systems)}.")
        values = dict(base.metrics)
    else:
        loaded = load_systems(folders, metrics=[metric])
        by_run = {r.name: r for r in runs}
        systems, values = {}, {}
        for key, scores in loaded.items():  # keys: "<run>/<system>"; keep each run's main system
            run_name, _, system = key.rpartition("/")
            run = by_run.get(Path(run_name).name)
            if run is not None and system == run.system:
                systems[key], values[key] = scores, run.metrics.get(system, {})
        ref = next(iter(systems))
    comparison = compare(systems, baseline=ref, metrics=[metric])
    shown = base.metrics.get(base.system, {})
    columns = [c for c in base.kind.columns(base.cfg) if c in shown]
    return Report(
        title=f"simlab report: {Path(path).resolve().name}",
        task=task,
        runs=[base.name, *[n for n in names if n != base.name]],
        baseline=base.name,
        config_fields=fields,
        config_values=flats,
        comparison=comparison,
        columns=columns,
        values=values,
        figures=report_figures(runs, axes, base.kind),
    )
