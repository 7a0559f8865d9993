"""Figures of `simlab report`: matplotlib (Agg) PNGs of a run's or a sweep's results.

`report_figures` draws, from the runs that `simlab.experiments.html_report` read: learning
curves overlaid across runs; the main metric against each swept axis (sweep only); for
retrieval, quality against QPS of the exact and approximate indexes (`speed.json`); for
pairs, precision-recall and threshold curves of the trained system; for multilabel, the
per-label F1 and AP of the trained system on test (`per_label.json`).

Pair labels are not stored in `perquery.tsv`; they are derived from its rows: the runner
writes `correct = (score >= thr) == label` with the frozen threshold `thr` of `metrics.json`,
so `label = (score >= thr) == correct`.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from simlab.config.loading import flat
from simlab.experiments.runs_io import read_run

if TYPE_CHECKING:
    from simlab.experiments.html_report import RunData
    from simlab.tasks.base import Task


@dataclass(frozen=True)
class Figure:
    """One PNG figure of a report."""

    name: str  # file stem
    title: str
    png: bytes


def fmt_value(v: Any) -> str:
    """A config or metric value as short text: `-` for None, 4 decimals for a float, JSON for a
    list or dict (report table cells and figure labels)."""
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4f}"
    return json.dumps(v) if isinstance(v, list | dict) else str(v)


def _png(fig) -> bytes:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")  # keeps a legend placed beside the axes
    plt.close(fig)
    return buf.getvalue()


def report_figures(runs: list[RunData], axes: dict[str, list], task: Task) -> list[Figure]:
    """The figures of a report on `runs` (see the module docstring); `axes`: the sweep's axes, {} for a run."""
    import matplotlib

    matplotlib.use("Agg")
    figures = []
    if any(r.history for r in runs):
        figures.append(_learning_curves(runs, task))
    swept = [r for r in runs if r.swept]  # not a baseline run shown beside the sweep: it has no point on the axis
    if len(swept) > 1:
        figures += [_metric_vs_axis(swept, key, axes) for key in axes]
    if "speed" in task.figures and any(r.speed for r in runs):
        figures.append(_quality_vs_speed(runs))
    if "scores" in task.figures:
        scored = [(r, *pair_scores_of(r)) for r in runs]
        scored = [s for s in scored if len(s[1])]
        if scored:
            figures += [_precision_recall(scored), _threshold_curves(scored)]
    if "per_label" in task.figures:
        tables = [(r.name, _per_label(r)) for r in runs]
        tables = [(name, t) for name, t in tables if t]
        if tables:
            figures.append(_per_label_bars(tables))
    return figures


def _learning_curves(runs: list[RunData], task: Task) -> Figure:
    """Train loss (solid) and, where the history has it, validation loss (dashed), and the per-epoch metric
    (left out when no epoch was evaluated, e.g. a run without a dev split)."""
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.ticker import MaxNLocator

    prefix = task.curve_prefix
    has_metric = any(h.get(f"{prefix}_{task.best_by(r.cfg)}") is not None for r in runs for h in r.history)
    fig, axs = plt.subplots(1, 2 if has_metric else 1, figsize=(11, 4) if has_metric else (6, 4), squeeze=False)
    ax_loss, ax_m = axs[0][0], axs[0][-1]  # without a metric: one panel, the loss's (its legend is the runs')
    metric, has_val = "", False
    for i, r in enumerate(runs):
        metric = task.best_by(r.cfg)
        epochs = [h["epoch"] for h in r.history]
        if not epochs:
            continue
        color = f"C{i % 10}"
        ax_loss.plot(epochs, [h.get("train_loss") for h in r.history], marker="o", color=color, label=r.name)
        val = [h.get(f"{prefix}_loss") for h in r.history]
        if any(v is not None for v in val):
            has_val = True
            ax_loss.plot(epochs, [np.nan if v is None else v for v in val], marker="s", ls="--", color=color)
        if has_metric:
            ax_m.plot(epochs, [h.get(f"{prefix}_{metric}") for h in r.history], marker="o", color=color, label=r.name)
    ax_loss.set(title=f"loss: train (solid), {prefix} (dashed)" if has_val else "train loss", xlabel="epoch")
    if has_metric:
        ax_m.set(title=f"{prefix} {metric}", xlabel="epoch")
    epochs = sorted({h["epoch"] for r in runs for h in r.history})
    for ax in (ax_loss, ax_m):
        if len(epochs) <= 12:
            ax.set_xticks(epochs)  # one tick per epoch (a single epoch gets one, not fractions)
        else:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    handles, labels = ax_m.get_legend_handles_labels()
    if has_val:
        handles += [Line2D([], [], color="k", marker="o"), Line2D([], [], color="k", marker="s", ls="--")]
        labels += ["train loss", f"{prefix} loss"]
    _legend_right(fig, handles, labels)
    what = f"train{f' and {prefix}' if has_val else ''} loss" + (f" and {prefix} {metric}" if has_metric else "")
    what += " per epoch" if has_metric else f" per epoch (no {prefix} evaluation per epoch)"
    return Figure("learning_curves", f"Learning curves: {what}", _png(fig))


def _legend_right(fig, handles, labels) -> None:
    """One legend for the whole figure, right of the axes, in a readable size."""
    if not handles:
        return
    fig.legend(handles, labels, loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=9, frameon=False)


def _metric_vs_axis(runs: list[RunData], key: str, axes: list[str]) -> Figure:
    """The main metric against one swept field: one line per combination of the other swept fields."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    flats = [flat(r.config) for r in runs]
    xs = [f.get(key) for f in flats]
    numeric = all(isinstance(x, int | float) and not isinstance(x, bool) for x in xs)
    pos = xs if numeric else [fmt_value(x) for x in xs]
    others = [k for k in axes if k != key]
    lines: dict[str, list[int]] = {}
    for i, f in enumerate(flats):
        lines.setdefault(", ".join(f"{k.split('.')[-1]}={fmt_value(f.get(k))}" for k in others), []).append(i)
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for name, idx in lines.items():
        idx = sorted(idx, key=lambda i: pos[i]) if numeric else idx
        ys = [runs[i].metrics.get(runs[i].system, {}).get(runs[i].metric) for i in idx]
        ax.plot([pos[i] for i in idx], ys, marker="o", label=name or None)
    if any(lines):
        ax.legend(fontsize=8)
    if all(isinstance(x, int) for x in xs):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if not numeric and max(len(str(p)) for p in pos) > 8:  # long names: slanted, so that they do not overlap
        plt.setp(ax.get_xticklabels(), rotation=25, ha="right")
    label = f"{runs[0].system} {runs[0].metric}"
    ax.set(xlabel=key, ylabel=label, title=f"{label} vs {key}")
    ax.grid(alpha=0.3)
    return Figure(f"metric_vs_{key.replace('.', '_')}", f"{label} against the swept {key}", _png(fig))


def _quality_vs_speed(runs: list[RunData]) -> Figure:
    """The main metric against batched QPS (log scale, plain-number ticks) of every exact and approximate index:
    one colour per run and model, one marker per index kind; the legend beside the plot."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    markers = {"flat": "o", "hnsw": "^", "ivf": "s", "pq": "D", "seismic": "v"}
    fig, ax = plt.subplots(figsize=(9, 4.5))
    metric = runs[0].metric
    models = list(dict.fromkeys(s.rsplit(".", 1)[0] for r in runs for s in r.speed))
    for i, r in enumerate(runs):
        for system, stats in r.speed.items():
            y = r.metrics.get(system, {}).get(r.metric)
            qps = stats.get("qps_batched", stats.get("qps_single"))
            if y is None or not qps:
                continue
            model, _, kind = system.rpartition(".")
            color = f"C{(i * len(models) + models.index(model)) % 10}"
            ax.scatter(
                qps,
                y,
                marker=markers.get(kind, "x"),
                s=80,
                color=color,
                edgecolors="k",
                linewidths=0.5,
                alpha=0.85,
                label=f"{r.name} {system}" if len(runs) > 1 else system,
            )
    ax.set_xscale("log")
    lo, hi = ax.get_xlim()
    subs = (1.0, 2.0, 5.0) if np.log10(hi / lo) < 2.5 else (1.0,)  # 1-2-5 ticks over a short range, decades else
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=subs, numticks=12))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: _short(v)))
    ax.xaxis.set_minor_formatter(NullFormatter())  # minor ticks unlabelled: no overlapping labels
    ax.set(xlabel="queries per second (batched, log scale)", ylabel=metric, title=f"{metric} vs speed")
    ax.grid(alpha=0.3)
    _legend_right(fig, *ax.get_legend_handles_labels())
    return Figure("quality_vs_speed", f"{metric} against QPS of the flat (exact) and approximate indexes", _png(fig))


def _short(v: float) -> str:
    """A tick label: 500, 2k, 50k, 1.5M."""
    for div, unit in ((1e6, "M"), (1e3, "k")):
        if v >= div:
            return f"{v / div:g}{unit}"
    return f"{v:g}"


def pair_scores_of(run: RunData) -> tuple[np.ndarray, np.ndarray, float]:
    """The trained system's test scores, labels (`(score >= thr) == correct`) and frozen threshold."""
    rows = read_run(run.folder).get(run.system, {})
    scores, correct = rows.get("score", {}), rows.get("correct", {})
    ids = [q for q in scores if q in correct]
    thr = float(run.metrics[run.system]["threshold"])
    s = np.array([scores[q] for q in ids], dtype=float)
    c = np.array([correct[q] for q in ids], dtype=float) > 0.5
    return s, (s >= thr) == c, thr


def threshold_curve(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, ...]:
    """Precision, recall and F1 when predicting `score >= t`, for every distinct score t, descending."""
    order = np.argsort(-scores, kind="stable")
    s, y = scores[order], labels[order].astype(float)
    tp, fp = np.cumsum(y), np.cumsum(1 - y)
    last = np.r_[s[1:] != s[:-1], True]  # the last pair of each group of tied scores
    tp, fp, thr = tp[last], fp[last], s[last]
    precision = tp / np.maximum(tp + fp, 1)
    recall = tp / max(y.sum(), 1)
    f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-12)
    return thr, precision, recall, f1


def _precision_recall(scored: list) -> Figure:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    for run, s, y, thr in scored:
        _, p, rec, _ = threshold_curve(s, y)
        ax.plot(rec, p, label=run.name)
        at = s >= thr
        tp = float((at & y).sum())
        ax.scatter([tp / max(y.sum(), 1)], [tp / max(at.sum(), 1)], marker="x", color="k", zorder=3)
    ax.set(
        xlabel="recall",
        ylabel="precision",
        xlim=(0, 1.02),
        ylim=(0, 1.02),
        title="precision-recall, trained system (x: frozen threshold)",
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return Figure("precision_recall", "Precision-recall curve of the trained system on test pairs", _png(fig))


def _threshold_curves(scored: list) -> Figure:
    import matplotlib.pyplot as plt

    n = len(scored)
    cols = min(n, 3)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 3.6 * rows), squeeze=False)
    for ax, (run, s, y, thr) in zip(axes.flat, scored):
        t, p, rec, f1 = threshold_curve(s, y)
        for values, label in ((f1, "F1"), (p, "precision"), (rec, "recall")):
            ax.plot(t, values, label=label)
        ax.axvline(thr, color="k", linestyle="--", label=f"frozen threshold {thr:.3f}")
        ax.set(xlabel="threshold", title=run.name, ylim=(0, 1.02))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    return Figure("threshold_curves", "F1, precision and recall of the trained system against the threshold", _png(fig))


def _per_label(run: RunData) -> dict[str, dict]:
    """The trained system's per-label test table (`per_label.json`), {} when absent."""
    path = run.folder / "per_label.json"
    if not path.is_file():
        return {}
    tables = json.loads(path.read_text(encoding="utf-8"))
    return tables.get(run.system, {})


def _per_label_bars(tables: list[tuple[str, dict[str, dict]]]) -> Figure:
    """Grouped bars: per-label F1 (top) and AP (bottom) on test, one bar per run."""
    import matplotlib.pyplot as plt

    labels = list(dict.fromkeys(lab for _, t in tables for lab in t))
    x = np.arange(len(labels))
    width = 0.8 / len(tables)
    fig, axes = plt.subplots(2, 1, figsize=(min(16, max(7, 0.5 * len(labels) + 3)), 6.5), sharex=True)
    for ax, key, title in ((axes[0], "f1", "F1 at the frozen threshold"), (axes[1], "ap", "average precision")):
        for i, (name, t) in enumerate(tables):
            values = [(t.get(lab, {}).get(key) or 0.0) for lab in labels]
            ax.bar(x + (i - (len(tables) - 1) / 2) * width, values, width, label=name)
        ax.set_xticks(x, labels, rotation=45 if len(labels) > 6 else 0, ha="right" if len(labels) > 6 else "center")
        ax.set(title=title, ylim=(0, 1.02))
        ax.grid(alpha=0.3, axis="y")
    axes[0].legend(fontsize=7)
    return Figure("per_label", "Per-label F1 and AP of the trained system on test", _png(fig))
