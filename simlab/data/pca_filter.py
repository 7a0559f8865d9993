"""The seed's PCA-2D filter: drop training pairs whose example and definition lie too far apart
(label 1) or too close (label 0) in a 2-D PCA projection of their embeddings (workload B).

For each filtered split: every distinct example and definition text is embedded (default
model wordllama), one PCA (scikit-learn) is fitted on all of them together and projects them
to 2-D, and a pair's distance is the euclidean distance of its two projected points. A label-1
pair is dropped when its distance is above `label1_max`, a label-0 pair when it is below
`label0_min`; pairs exactly at a threshold are kept.

Units (`units`): the seed gave raw distances (75, 80) for its own 1024-d BERT embeddings; raw
distances depend on the model and on normalisation (wordllama's normalised vectors give
distances below 2), so the default is `percentile`: a threshold X is the X-th percentile of
the split's pair distances (both labels pooled, one scale for both thresholds, as the seed's
single axis). `units="distance"` takes raw distances.

The output is a new dataset folder (written atomically): the same tables, the filtered pair
files, `meta.json` with the filter's parameters, and `filter.json` with the resolved thresholds,
the counts and every dropped pair with its distance. Other splits are copied unchanged (by
default only `train` is filtered: val and test must stay comparable).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from simlab.data.matching import (
    FORMAT_NAME,
    FORMAT_VERSION,
    PAIR_COLUMNS,
    PAIRS_DIR,
    TABLE_A,
    TABLE_B,
    LabelledPairs,
    MatchingDataset,
    read_matching,
)
from simlab.data.matching_convert import write_csv, write_table
from simlab.errors import ConfigError, DataError
from simlab.fsutil import staged_dir, write_json

UNITS = ("percentile", "distance")


@dataclass
class SplitFilter:
    """What the filter did to one split: resolved thresholds, per-pair distances, what was dropped."""

    split: str
    label1_max: float
    label0_min: float
    distances: np.ndarray  # (n_pairs,) in the order of the split's pair file
    keep: np.ndarray  # (n_pairs,) bool
    labels: np.ndarray  # (n_pairs,)
    points: dict[str, np.ndarray] = field(default_factory=dict)  # "examples", "definitions": (n, 2)

    def counts(self) -> dict[str, int]:
        pos, drop = self.labels == 1, ~self.keep
        return {
            "pairs": int(len(self.labels)),
            "label1_dropped": int((pos & drop).sum()),
            "label0_dropped": int((~pos & drop).sum()),
            "label1_kept": int((pos & ~drop).sum()),
            "label0_kept": int((~pos & ~drop).sum()),
        }


def pair_distances(ex: np.ndarray, de: np.ndarray, left_rows: list[int], right_rows: list[int], seed: int = 0):
    """PCA-2D of the rows of `ex` (examples) and `de` (definitions) fitted together; the distance of each pair.

    Returns:
        (distances (n_pairs,), example points (n_ex, 2), definition points (n_def, 2)).
    """
    from sklearn.decomposition import PCA

    pca = PCA(n_components=2, random_state=seed).fit(np.vstack([ex, de]))
    pe, pd = pca.transform(ex), pca.transform(de)  # (n_ex, 2), (n_def, 2)
    return np.linalg.norm(pe[left_rows] - pd[right_rows], axis=1), pe, pd


def _resolve(value: float, distances: np.ndarray, units: str) -> float:
    return float(np.percentile(distances, value)) if units == "percentile" else float(value)


def filter_split(
    data: MatchingDataset, split: str, encode, label1_max: float, label0_min: float, units: str, fields=None
) -> SplitFilter:
    """Distances and the keep mask of one split; `encode(texts) -> (n, d)` embeds texts."""

    pairs = data.pairs[split]
    lf = [f for f in (fields or data.left.fields) if f in data.left.fields and f not in ("char_start", "char_end")]
    rf = [f for f in (fields or data.right.fields) if f in data.right.fields]
    lids, rids = list(dict.fromkeys(pairs.left_ids)), list(dict.fromkeys(pairs.right_ids))
    ex = encode([data.left.text(data.left.position[i], lf) for i in lids])
    de = encode([data.right.text(data.right.position[i], rf) for i in rids])
    lpos, rpos = {i: k for k, i in enumerate(lids)}, {i: k for k, i in enumerate(rids)}
    d, pe, pd = pair_distances(ex, de, [lpos[i] for i in pairs.left_ids], [rpos[i] for i in pairs.right_ids])
    t1, t0 = _resolve(label1_max, d, units), _resolve(label0_min, d, units)
    labels = np.asarray(pairs.labels)
    keep = np.where(labels == 1, d <= t1, d >= t0)
    return SplitFilter(split, t1, t0, d, keep, labels, {"examples": pe, "definitions": pd})


def plot_filter(results: Sequence[SplitFilter], path: Path, units: str) -> None:
    """PNG: the PCA-2D points, and each pair's distance by label with both thresholds drawn."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from simlab import fsutil

    fig, axes = plt.subplots(len(results), 2, figsize=(10, 4 * len(results)), squeeze=False)
    rng = np.random.default_rng(0)
    for (ax_pts, ax_d), r in zip(axes, results):
        ax_pts.scatter(*r.points["examples"].T, s=6, alpha=0.5, label="examples")
        ax_pts.scatter(*r.points["definitions"].T, s=6, alpha=0.5, label="definitions")
        ax_pts.set(title=f"{r.split}: PCA-2D of the embeddings", xlabel="PC 1", ylabel="PC 2")
        ax_pts.legend()
        for label, color in ((1, "tab:green"), (0, "tab:red")):
            sel = r.labels == label
            x = label + rng.uniform(-0.25, 0.25, sel.sum())
            kept = r.keep[sel]
            ax_d.scatter(x[kept], r.distances[sel][kept], s=6, color=color, alpha=0.5, label=f"label {label} kept")
            ax_d.scatter(x[~kept], r.distances[sel][~kept], s=10, marker="x", color="black", alpha=0.6)
        ax_d.axhline(r.label1_max, color="tab:green", ls="--", label=f"label 1 max {r.label1_max:.3g}")
        ax_d.axhline(r.label0_min, color="tab:red", ls="--", label=f"label 0 min {r.label0_min:.3g}")
        c = r.counts()
        ax_d.set(
            title=f"{r.split}: distance per pair\n(x = dropped: {c['label1_dropped']} label 1, "
            f"{c['label0_dropped']} label 0; {units})",
            xticks=[0, 1],
            xlabel="label",
            ylabel="distance in the PCA plane",
        )
        ax_d.legend(fontsize=7)
    fig.tight_layout()
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    fsutil.write_bytes(Path(path), buf.getvalue())


def filter_pca(
    src: str | Path,
    out: str | Path,
    label1_max: float,
    label0_min: float,
    *,
    units: str = "percentile",
    model: str = "wordllama",
    splits: Sequence[str] = ("train",),
    fields: Sequence[str] | None = None,
    plot: str | Path | None = None,
    overwrite: bool = False,
    encode=None,
) -> list[SplitFilter]:
    """Filter a labelled-pairs dataset by PCA-2D distance into a new folder; see the module docstring.

    Args:
        encode: `texts -> (n, d) array`; default: `model` (a simlab model name or folder).

    Raises:
        ConfigError: bad `units`, a percentile outside [0, 100], or an unknown split.
        DataError: `src` is not a labelled-pairs dataset, or `out` exists and not `overwrite`.
    """
    src, out = Path(src), Path(out)
    _check_thresholds(label1_max, label0_min, units)
    if out.exists() and not overwrite:
        raise DataError(f"{out} already exists; pass --overwrite or choose another folder.")
    data = _read_labelled_pairs(src, splits)
    if encode is None:
        encode = _model_encoder(model)
    results = [filter_split(data, s, encode, label1_max, label0_min, units, fields) for s in splits]
    params = {"label1_max": label1_max, "label0_min": label0_min, "units": units, "model": model}
    with staged_dir(out, overwrite=overwrite) as tmp:
        counts = _write_filtered(tmp, data, {r.split: r.keep for r in results})
        write_json(
            tmp / "meta.json",
            {
                "format": FORMAT_NAME,
                "version": FORMAT_VERSION,
                "source": str(src),
                "tables": {TABLE_A: len(data.left), TABLE_B: len(data.right)},
                "pairs": counts,
                "filter": {"kind": "pca-2d", **params, "splits": list(splits)},
            },
        )
        write_json(tmp / "filter.json", {**params, "splits": {r.split: _split_record(data, r) for r in results}})
    if plot is not None:
        plot_filter(results, Path(plot), units)
    return results


def _check_thresholds(label1_max: float, label0_min: float, units: str) -> None:
    """Raise `ConfigError` for unknown `units` or a percentile outside [0, 100]."""
    if units not in UNITS:
        raise ConfigError(f"units {units!r}; choose one of: {', '.join(UNITS)}")
    if units == "percentile" and not (0 <= label1_max <= 100 and 0 <= label0_min <= 100):
        raise ConfigError(
            f"--label1-max {label1_max} / --label0-min {label0_min}: percentiles must be in [0, 100]; "
            "pass --units distance for raw distances"
        )


def _read_labelled_pairs(src: Path, splits: Sequence[str]) -> MatchingDataset:
    """The dataset at `src`; it must have labelled pairs and every split of `splits`."""
    data = read_matching(src)
    if data.kind != "pairs":
        raise DataError(f"{src}: a records file with groups; the PCA filter needs labelled pairs (pairs/<split>.csv).")
    unknown = [s for s in splits if s not in data.pairs]
    if unknown:
        raise ConfigError(f"splits {unknown}: not in {src}; splits are {', '.join(data.pairs)}")
    return data


def _model_encoder(model: str):
    """`texts -> (n, d) array` of the simlab model `model` (a name or a folder)."""
    from simlab.config import ModelConfig
    from simlab.models import load_model

    st = load_model(ModelConfig(name=model))

    def encode(texts: list[str]) -> np.ndarray:
        return st.encode(texts, batch_size=256, convert_to_numpy=True, show_progress_bar=len(texts) > 5000)

    return encode


def _write_filtered(tmp: Path, data: MatchingDataset, keeps: dict[str, np.ndarray]) -> dict[str, dict[str, int]]:
    """Write both tables and every split's kept pairs (all pairs of a split not in `keeps`) into `tmp`.

    Returns:
        split -> the kept pairs' counts (`LabelledPairs.counts`).
    """
    write_table(tmp / TABLE_A, data.left)
    write_table(tmp / TABLE_B, data.right)
    (tmp / PAIRS_DIR).mkdir()
    counts = {}
    for split, pairs in data.pairs.items():
        keep = keeps[split] if split in keeps else np.ones(len(pairs), dtype=bool)
        kept = LabelledPairs(
            [x for x, k in zip(pairs.left_ids, keep) if k],
            [x for x, k in zip(pairs.right_ids, keep) if k],
            [x for x, k in zip(pairs.labels, keep) if k],
            split,
        )
        write_csv(tmp / PAIRS_DIR / f"{split}.csv", PAIR_COLUMNS, zip(kept.left_ids, kept.right_ids, kept.labels))
        counts[split] = kept.counts()
    return counts


def _split_record(data: MatchingDataset, r: SplitFilter) -> dict:
    """One split's entry of `filter.json`: the resolved thresholds, the counts and every dropped pair."""
    pairs = data.pairs[r.split]
    return {
        "label1_max_distance": r.label1_max,
        "label0_min_distance": r.label0_min,
        **r.counts(),
        "dropped": [
            {"ltable_id": a, "rtable_id": b, "label": int(y), "distance": round(float(d), 6)}
            for a, b, y, d, k in zip(pairs.left_ids, pairs.right_ids, r.labels, r.distances, r.keep)
            if not k
        ],
    }
