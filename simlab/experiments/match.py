"""`simlab match`: apply a trained pair matcher to two new tables (workload A).

Stages: read the finished `task: pairs` run (its config, its trained model and the trained
system's val threshold, frozen); read both tables with the training run's id column and text
fields; encode every record once; index the right table (HNSW or exact flat) and take the
top `k` right records per left record as candidates (the *blocking* step); score each
candidate exactly as `simlab.training.pairs.pair_scores` does (cosine, or minus the euclidean
distance when the run trained with `train.distance: euclidean`); keep the candidates scoring
at or above the threshold and write them as CSV::

    left_id,right_id,score        sorted by left id (numeric ids in numeric order), then score desc

With a labelled pairs file (`ltable_id,rtable_id,label`) the report also says how good the
blocking and the final matches are; see `MatchReport` for exactly what is counted.

Example:
    >>> report = match_tables("runs/abt-buy", "new/tableA.csv", "new/tableB.csv", "matches.csv")  # doctest: +SKIP
    >>> print(report.summary())  # doctest: +SKIP
"""

from __future__ import annotations

import csv
import io
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from simlab import fsutil
from simlab.errors import ConfigError, DataError, RunFolderError

if TYPE_CHECKING:
    from simlab.data.matching import LabelledPairs, Records
    from simlab.tasks.pairs.config import PairsConfig

SEARCH_BATCH = 1024
"""Left records searched per index call (one progress-bar step)."""
SYSTEM = "trained"
"""The system of the run's metrics.json whose frozen val threshold is applied."""


@dataclass(frozen=True)
class MatchReport:
    """What `match_tables` did; the label fields are None when no labels file was given.

    Counting with labels (pairs are (left id, right id); a pair listed twice counts once):

    - `blocking_recall` = |positives whose right record is among the left record's top-k
      candidates| / |positives|, where positives are the label-1 pairs of the labels file.
    - The final matches are judged **only on pairs that appear in the labels file** (labelled
      test pairs are usually a sample, so an unlabelled written match is neither right nor
      wrong and is not counted). TP = written matches labelled 1; FP = written matches
      labelled 0; FN = label-1 pairs not written (outside the top-k, or below the threshold).
      `precision` = TP / (TP + FP), `recall` = TP / (TP + FN), `f1` their harmonic mean;
      each is 0.0 when its denominator is 0.

    Attributes:
        n_left: Records in the left table (the queries).
        n_right: Records in the right table (indexed).
        n_candidates: (left, right) pairs among the top-k per left record.
        n_matches: Candidates with score >= threshold: the rows written.
        threshold: The threshold applied (the run's frozen val threshold, or the override).
        seconds: Wall time of the whole call.
        k: Candidates per left record.
        index: Index type used for blocking.
        out: The CSV written.
        n_labelled: Distinct labelled pairs.
        n_positive: Distinct label-1 pairs.
        blocking_recall: See above.
        precision: See above.
        recall: See above.
        f1: See above.
    """

    n_left: int
    n_right: int
    n_candidates: int
    n_matches: int
    threshold: float
    seconds: float
    k: int
    index: str
    out: str
    n_labelled: int | None = None
    n_positive: int | None = None
    blocking_recall: float | None = None
    precision: float | None = None
    recall: float | None = None
    f1: float | None = None

    def to_dict(self) -> dict:
        """The report as a JSON-ready dict."""
        return asdict(self)

    def summary(self) -> str:
        """A few human-readable lines (what the CLI prints)."""
        lines = [
            f"{self.n_left} left x {self.n_right} right records: {self.n_candidates} candidates "
            f"(top-{self.k}, {self.index}), {self.n_matches} matches with score >= {self.threshold:.4f}, "
            f"{self.seconds:.1f} s -> {self.out}",
        ]
        if self.n_labelled is not None:
            lines.append(
                f"labels ({self.n_labelled} pairs, {self.n_positive} positive): blocking recall@{self.k} "
                f"{self.blocking_recall:.4f}; matches on labelled pairs: precision {self.precision:.4f}, "
                f"recall {self.recall:.4f}, F1 {self.f1:.4f}"
            )
        return "\n".join(lines)


def read_pairs_run(run_dir: Path) -> tuple[PairsConfig, float]:
    """The config and the trained system's frozen val threshold of a finished pairs run.

    Raises:
        RunFolderError: `run_dir` has no meta.json (not a run, or not finished), is not a
            `task: pairs` run, or lacks its model or the trained threshold.
    """
    from simlab.tasks import load_config
    from simlab.tasks.skeleton import run_task

    run_dir = Path(run_dir)
    run_task(run_dir, "match")
    if not (run_dir / "model").is_dir():
        raise RunFolderError(f"{run_dir / 'model'} is missing; the run folder is incomplete, re-run it.")
    try:
        threshold = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))[SYSTEM]["threshold"]
    except (FileNotFoundError, json.JSONDecodeError, KeyError, TypeError):
        raise RunFolderError(
            f"{run_dir / 'metrics.json'}: no {SYSTEM}.threshold; the run folder is incomplete, re-run it."
        ) from None
    return load_config(run_dir / "config.yaml"), float(threshold)


def match_tables(
    run_dir: str | Path,
    left_path: str | Path,
    right_path: str | Path,
    out_path: str | Path,
    k: int = 10,
    index: str = "hnsw",
    threshold: float | None = None,
    labels_path: str | Path | None = None,
    fields: list[str] | None = None,
    progress: bool = True,
) -> MatchReport:
    """Match the records of two tables with a trained pairs run; see the module docstring.

    Args:
        run_dir: A finished `task: pairs` run folder.
        left_path: Left table (CSV or JSONL) with the run's id column (`data.id_field`).
        right_path: Right table, same id column and text fields; it is the one indexed.
        out_path: CSV to write (atomically): `left_id,right_id,score`.
        k: Candidates per left record (clipped to the right table's size).
        index: `simlab.index.dense.INDEX_TYPES` key: "hnsw" (approximate) or "flat" (exact).
        threshold: Keep candidates scoring at or above this; None: the run's frozen val
            threshold of the trained system.
        labels_path: Optional labelled pairs CSV `ltable_id,rtable_id,label` for the report.
        fields: Text fields joined into a record's text; None: the run's `data.fields`, or
            every column but the id and group columns (the rule training used).
        progress: Show progress bars while encoding and searching.

    Returns:
        The `MatchReport`.

    Raises:
        RunFolderError: `run_dir` is not a finished pairs run.
        DataError: a table or the labels file is missing or malformed, lacks the id column or
            a field, or the labels name an unknown id (`file:line`).
        ConfigError: `k` is not a positive integer, or `index` is not an index type.
    """
    from simlab.index.dense import INDEX_TYPES

    t0 = time.perf_counter()
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ConfigError(f"-k {k}: the number of candidates per left record must be at least 1")
    run_dir = Path(run_dir)
    cfg, frozen = read_pairs_run(run_dir)
    threshold = frozen if threshold is None else float(threshold)
    index_type = INDEX_TYPES[index]  # unknown name -> ConfigError listing the valid ones
    left, right, names = _read_tables(cfg, left_path, right_path, fields)
    labels = _read_labels(labels_path, left, right) if labels_path is not None else None  # before any work
    a, b = _embed(run_dir, cfg, left, right, names, progress)  # (n_left, d), (n_right, d)
    distance = cfg.train.distance
    metric = "ip" if distance == "cosine" else "l2"
    if metric == "ip":  # cosine = inner product of unit vectors
        a, b = _unit(a), _unit(b)
    built = index_type.build(b, right.ids, metric=metric, model_id=str(run_dir / "model"), normalized=metric == "ip")
    li, ri = _candidates(built, a, right, k, progress)  # (n_candidates,), (n_candidates,)
    scores = _pair_similarity(a[li], b[ri], distance)  # (n_candidates,), as pair_scores computes it
    keep = scores >= threshold
    rows = sorted(
        zip(li[keep].tolist(), ri[keep].tolist(), scores[keep].tolist()),
        key=lambda r: (_id_key(left.ids[r[0]]), -r[2], _id_key(right.ids[r[1]])),
    )
    _write_matches(Path(out_path), left, right, rows)

    found = {(left.ids[i], right.ids[j]) for i, j in zip(li.tolist(), ri.tolist())}
    matched = {(left.ids[i], right.ids[j]) for i, j, _ in rows}
    judged = _judge(labels, found, matched) if labels is not None else {}
    return MatchReport(
        n_left=len(left),
        n_right=len(right),
        n_candidates=len(li),
        n_matches=len(rows),
        threshold=threshold,
        seconds=time.perf_counter() - t0,
        k=min(k, len(right)),
        index=index,
        out=str(out_path),
        **judged,
    )


def _read_tables(
    cfg: PairsConfig, left_path: str | Path, right_path: str | Path, fields: list[str] | None
) -> tuple[Records, Records, list[str]]:
    """Both tables, read with the run's id column and text fields, and the fields a record's text joins.

    `fields` (None: the run's `data.fields`, else every left column but the id and group columns)
    are read from both tables; the image field, if the run has one, comes last, as in training.

    Raises:
        DataError: a table is missing, malformed or empty, or lacks the id column or a field.
    """
    from simlab.data.matching import read_records

    id_field, chosen, image = cfg.data.id_field, fields or cfg.data.fields, cfg.data.image_field
    left = read_records(left_path, id_field=id_field, fields=chosen, image_field=image)
    names = list(chosen) if chosen else [f for f in left.fields if f != cfg.data.group_field]
    names = [f for f in names if f != image] + ([image] if image else [])  # the image path last, as in training
    right = read_records(right_path, id_field=id_field, fields=names, image_field=image)
    for table in (left, right):
        if not len(table):
            raise DataError(f"{table.source}: no records; a table needs a header and at least one record.")
    return left, right, names


def _embed(
    run_dir: Path, cfg: PairsConfig, left: Records, right: Records, names: list[str], progress: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Both tables' records encoded by the run's model, in its record text format: `[n_left, d]`, `[n_right, d]`."""
    from sentence_transformers import SentenceTransformer

    from simlab.models.backends import with_backend
    from simlab.tasks.pairs.sets import record_sep

    sep = record_sep(cfg)  # the run's record text format: one string, or FIELD_SEP-joined fields
    # a per-field model's first module is simlab's FieldFusion, which sentence-transformers imports only when trusted
    model = SentenceTransformer(str(run_dir / "model"), device="cpu", trust_remote_code=sep != " ")
    model = with_backend(model, cfg.model.backend)  # the run's model.backend, as its evaluation encoded
    return _encode(model, left, names, progress, sep), _encode(model, right, names, progress, sep)


def _write_matches(path: Path, left: Records, right: Records, rows: list[tuple[int, int, float]]) -> None:
    """Write the CSV `left_id,right_id,score` of the (left position, right position, score) rows, atomically."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["left_id", "right_id", "score"])
    writer.writerows((left.ids[i], right.ids[j], f"{s:.6f}") for i, j, s in rows)
    fsutil.write_text(path, buf.getvalue())


def _encode(model, records: Records, fields: list[str], progress: bool, sep: str = " ") -> np.ndarray:
    """Float32 embeddings `[n, d]` of `Records.text` of each record (the training texts, joined by `sep`)."""

    texts = [records.text(i, fields, sep) for i in range(len(records))]
    emb = model.encode(texts, batch_size=256, convert_to_numpy=True, show_progress_bar=progress)
    return np.asarray(emb, dtype=np.float32)


def _candidates(built, queries: np.ndarray, right: Records, k: int, progress: bool) -> tuple[np.ndarray, np.ndarray]:
    """Left and right positions of every top-k candidate pair, in search order."""
    from tqdm.auto import tqdm

    lefts: list[int] = []
    rights: list[int] = []
    pos = right.position
    steps = range(0, len(queries), SEARCH_BATCH)
    for start in tqdm(steps, desc="search", unit="batch", disable=not progress):
        ids, _ = built.search(queries[start : start + SEARCH_BATCH], k)  # an ANN row may be short
        for offset, row in enumerate(ids):
            lefts += [start + offset] * len(row)
            rights += [pos[r] for r in row]
    return np.array(lefts, dtype=np.int64), np.array(rights, dtype=np.int64)


def _unit(x: np.ndarray) -> np.ndarray:
    """Rows of `x` (`[n, d]`) scaled to length 1."""
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def _pair_similarity(a: np.ndarray, b: np.ndarray, distance: str) -> np.ndarray:
    """Row-wise similarity of `a[i]` and `b[i]` (both `[n, d]`), the formula of `pair_scores`."""
    if distance == "euclidean":
        return -np.linalg.norm(a - b, axis=1)
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    return (a * b).sum(axis=1) / np.maximum(norms, 1e-12)


def _id_key(rid: str) -> tuple[int, int, str]:
    """Sort key: numeric ids in numeric order, before the other ids in string order."""
    return (0, int(rid), rid) if rid.isdigit() else (1, 0, rid)


def _read_labels(labels_path: str | Path, left: Records, right: Records) -> LabelledPairs:
    """The labelled pairs file, checked against both tables (`file:line` of an unknown id or a bad label)."""
    from simlab.data.matching import read_pairs

    return read_pairs(Path(labels_path), "labels", left, right, left.source, right.source)


def _judge(labels: LabelledPairs, found: set, matched: set) -> dict:
    """Blocking recall and P/R/F1 of the matches on the labelled pairs (see `MatchReport`)."""
    labelled = dict(zip(zip(labels.left_ids, labels.right_ids), labels.labels))  # duplicates agree
    positives = {p for p, y in labelled.items() if y == 1}
    predicted = matched & labelled.keys()
    tp = len(predicted & positives)
    precision = tp / len(predicted) if predicted else 0.0
    recall = tp / len(positives) if positives else 0.0
    return {
        "n_labelled": len(labelled),
        "n_positive": len(positives),
        "blocking_recall": len(positives & found) / len(positives) if positives else 0.0,
        "precision": precision,
        "recall": recall,
        "f1": 2 * precision * recall / (precision + recall) if precision + recall else 0.0,
    }
