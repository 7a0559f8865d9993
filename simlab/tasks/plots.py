"""Plots saved into run folders (matplotlib, Agg backend, no display needed)."""

from __future__ import annotations

from pathlib import Path


def learning_curves(history: list[dict], path: Path, metric: str, prefix: str = "dev") -> dict[str, tuple[list, list]]:
    """`curves.png`: training loss (and validation loss when recorded) and the dev metric per epoch.

    Returns:
        The plotted series, label -> (epochs, values): `train loss`, `val loss` (when recorded)
        and `<prefix> <metric>`; one point per epoch.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [h["epoch"] for h in history]
    series: dict[str, tuple[list, list]] = {}
    fig, (ax_loss, ax_metric) = plt.subplots(1, 2, figsize=(9, 3.5))
    for key, label in (("train_loss", "train"), ("val_loss", "val")):
        values = [h.get(key) for h in history]
        if any(v is not None for v in values):
            ax_loss.plot(epochs, values, marker="o", label=label)
            series[f"{label} loss"] = (epochs, values)
    ax_loss.set(title="loss", xlabel="epoch")
    if series:
        ax_loss.legend()
    values = [h.get(f"{prefix}_{metric}") for h in history]
    if any(v is not None for v in values):
        ax_metric.plot(epochs, values, marker="o", color="tab:green", label=f"{prefix} {metric}")
        ax_metric.legend()
        series[f"{prefix} {metric}"] = (epochs, values)
    ax_metric.set(title=f"{prefix} {metric}", xlabel="epoch")
    for ax in (ax_loss, ax_metric):
        ax.grid(alpha=0.3)
        ax.set_xticks(epochs)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(path)
    return series
