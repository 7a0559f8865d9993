"""report.md and the terminal table of a `task: multilabel` run.

The headline block follows the seed experiment logs: the trained system's test and val
metrics, one per line, each with its delta against the `baseline:` run when one is given:

```
TEST:
    f1_micro: 0.5900 (+0.0200)
```
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from simlab.tasks.tables import closing_section, history_section, md_table

if TYPE_CHECKING:
    from simlab.tasks.base import Table
    from simlab.tasks.multilabel.run import MultilabelSummary

COLUMNS = [
    ("f1_micro", "F1 micro"),
    ("f1_macro", "F1 macro"),
    ("precision_micro", "P micro"),
    ("recall_micro", "R micro"),
    ("ap", "AP"),
    ("hamming", "hamming"),
    ("exact_match", "exact match"),
    ("threshold", "thr (val)"),
    ("val_f1_micro", "val F1 micro"),
]
BLOCK = ("f1_micro", "f1_macro", "precision_micro", "recall_micro", "precision_macro", "recall_macro", "ap", "hamming")


def delta_line(name: str, value: float, base: float | None) -> str:
    """`f1_micro: 0.5900 (+0.0200)`; without a baseline value just `f1_micro: 0.5900`."""
    if base is None:
        return f"{name}: {value:.4f}"
    return f"{name}: {value:.4f} ({value - base:+.4f})"


def metric_rows(summary: MultilabelSummary) -> tuple[list[str], list[list[str]]]:
    rows = [[name] + [f"{m.get(k, float('nan')):.4f}" for k, _ in COLUMNS] for name, m in summary.metrics.items()]
    return ["system", *[t for _, t in COLUMNS]], rows


def seed_block(summary: MultilabelSummary) -> str:
    """The TEST/VAL block of the trained system, with deltas against the baseline run."""
    m = summary.metrics.get("trained", {})
    base = (summary.baseline_metrics or {}).get("trained", {})
    best = next((h for h in summary.history if h.get("epoch") == _best_epoch(summary)), None)
    lines = ["TEST:"] + [f"    {delta_line(k, m[k], base.get(k))}" for k in BLOCK if k in m]
    lines += ["", "VAL:"]
    if best is not None:
        lines.append(f"    {summary.config.loss.name}_loss: {best['val_loss']:.4f}")
    lines += [f"    {delta_line(k, m[f'val_{k}'], base.get(f'val_{k}'))}" for k in BLOCK if f"val_{k}" in m]
    return "\n".join(lines)


def _best_epoch(summary: MultilabelSummary) -> int | None:
    key = summary.config.train.best_by
    if not summary.history:
        return None
    if key == "loss":
        return min(summary.history, key=lambda h: h["val_loss"])["epoch"]
    return max(summary.history, key=lambda h: h[f"val_{key}"])["epoch"]


def render(summary: MultilabelSummary) -> str:
    cfg = summary.config
    against = f", deltas against `{summary.config.baseline}`" if summary.baseline_metrics else ""
    parts = [
        f"# {cfg.name}",
        "",
        f"Data `{cfg.data.path}`: {summary.n_test} test items, {len(summary.labels)} labels. Backbone "
        f"`{cfg.model.backbone}` ({'frozen' if cfg.model.freeze else 'trained'}, {cfg.model.head} head), loss "
        f"`{cfg.loss.name}`, scheduler `{cfg.scheduler.name}`"
        + (f" (gamma {cfg.scheduler.gamma})" if cfg.scheduler.name == "exponential" else "")
        + f", thresholds `{cfg.thresholds.mode}`.",
        "",
        f"## Trained model{against}",
        "",
        "```",
        seed_block(summary),
        "```",
        "",
        "## Test (thresholds from val, frozen)",
        "",
        md_table(*metric_rows(summary)),
    ]
    table = summary.per_label.get("trained", {})
    if table:
        rows = [
            [lab, str(t["support"]), f"{t['precision']:.4f}", f"{t['recall']:.4f}", f"{t['f1']:.4f}"]
            + ["-" if t["ap"] is None else f"{t['ap']:.4f}", f"{t['threshold']:.2f}"]
            for lab, t in table.items()
        ]
        parts += ["", "## Per label (trained, test)", ""]
        parts.append(md_table(["label", "support", "precision", "recall", "F1", "AP", "threshold"], rows))
    if summary.cost:
        c = summary.cost
        parts += [
            "",
            "## Cost",
            "",
            f"{c['parameters']:,} parameters ({c['trainable_parameters']:,} trained); {c['train_seconds']:.1f} s of "
            f"training, {c['seconds_per_epoch']:.1f} s per epoch (validation included); peak memory of the process "
            f"{c['peak_memory_mb']:,.0f} MiB (resident set).",
        ]
    keys = ["train_loss", "val_loss", "val_ap", "val_f1_micro", "val_f1_macro", "val_threshold", "lr", "seconds"]
    parts += history_section(summary, keys)
    return "\n".join(parts + closing_section(summary))


def tables(summary: MultilabelSummary) -> list[Table]:
    title = f"{summary.config.name}: {summary.n_test} test items (thresholds tuned on val, frozen)"
    return [(title, *metric_rows(summary))]
