"""Apply a finished run to new inputs, its model loaded once: two records matched, or a text classified.

- `PairMatcher` (pairs and definitions runs): two records in, a score and the decision at the
  trained system's val threshold, frozen (`metrics.json` `trained.threshold`). A pairs run
  scores as `simlab.training.pairs.pair_scores` (cosine, or minus the euclidean distance) the
  record texts its training joined (`data.fields`, in order); a definitions run scores with its
  head, sigmoid(logit), a context with its target word marked when the encoder pools by target.
- `LabelClassifier` (multilabel text runs): every label's probability and its frozen threshold.

A record is a string (the whole text) or a mapping field -> value of the run's fields.
`simlab serve` answers `/match` and `/classify` with these.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from simlab import fsutil
from simlab.errors import DataError, RunFolderError

Record = str | Mapping[str, object]


def frozen_threshold(run_dir: Path, system: str = "trained") -> float:
    """The val threshold of `system`, frozen for test (metrics.json)."""
    try:
        return float(json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))[system]["threshold"])
    except (FileNotFoundError, json.JSONDecodeError, KeyError, TypeError, ValueError):
        raise RunFolderError(
            f"{run_dir / 'metrics.json'}: no {system}.threshold; the run folder is incomplete, re-run it."
        ) from None


def _model_dir(run_dir: Path) -> Path:
    path = run_dir / "model"
    if not path.is_dir():
        raise RunFolderError(f"{path} is missing; the run folder is incomplete, re-run it.")
    return path


def record_text(record: Record, fields: list[str], sep: str, side: str) -> str:
    """The text a model reads for `record`: a string as it is; a mapping's `fields` values joined by `sep`.

    Raises:
        DataError: an empty record, a field the run does not have, or a value that is not text.
    """
    if isinstance(record, str):
        if not record.strip():
            raise DataError(f"{side}: the record is empty; give its text or its fields ({', '.join(fields)})")
        return record if sep == " " else sep.join([record.replace(sep, " ")] + [""] * (len(fields) - 1))
    unknown = sorted(set(record) - set(fields))
    if unknown:
        raise DataError(f"{side}: unknown field(s) {unknown}; this run's records have the fields {fields}")
    values = []
    for f in fields:
        value = record.get(f, "")
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            raise DataError(f"{side}.{f}: expected text, got {type(value).__name__}")
        values.append(str(value).strip().replace(sep, " ") if sep != " " else str(value).strip())
    text = " ".join(v for v in values if v) if sep == " " else sep.join(values)
    if not text.replace(sep, "").strip():
        raise DataError(f"{side}: every field is empty; give at least one of {fields}")
    return text


class PairMatcher:
    """A pairs or definitions run's model (and head), its record fields and its frozen threshold, loaded once.

    Raises:
        RunFolderError: not a finished pairs/definitions run, or its model or threshold is missing.
    """

    def __init__(self, run_dir: str | Path) -> None:
        from simlab.data.matching import read_matching
        from simlab.tasks import load_config
        from simlab.tasks.skeleton import run_task

        self.path = Path(run_dir)
        self.task = run_task(self.path).name
        if self.task not in ("pairs", "definitions"):
            raise RunFolderError(f"{self.path} is a {self.task} run; matching takes pairs and definitions runs")
        model_dir = _model_dir(self.path)
        fsutil.verify_manifest(self.path, under=("model",))
        self.threshold = frozen_threshold(self.path)
        self.config = cfg = load_config(self.path / "config.yaml")
        d = cfg.data
        data = read_matching(Path(d.path), id_field=d.id_field, group_field=d.group_field)
        self.image_field = getattr(d, "image_field", None)
        self._head = None
        if self.task == "definitions":
            self._load_definitions(model_dir, data)
        else:
            self._load_pairs(model_dir, data)

    def _load_pairs(self, model_dir: Path, data) -> None:
        from sentence_transformers import SentenceTransformer

        from simlab.models.backends import with_backend
        from simlab.tasks.pairs.sets import pair_fields, record_sep

        self.sep = record_sep(self.config)
        names = pair_fields(self.config, data.left)
        self.fields = self.left_fields = self.right_fields = [f for f in names if f != self.image_field]
        self.distance = self.config.train.distance
        model = SentenceTransformer(str(model_dir), device="cpu", trust_remote_code=self.sep != " ")
        self.model = with_backend(model, self.config.model.backend)  # as the run's evaluation encoded
        self.mark = False

    def _load_definitions(self, model_dir: Path, data) -> None:
        from sentence_transformers import SentenceTransformer

        from simlab.models.backends import with_backend
        from simlab.models.context_pooling import ContextPooling
        from simlab.models.head import PairHead
        from simlab.tasks.definitions.sets import text_fields

        self.sep, self.distance = " ", "head"
        self.left_fields, self.right_fields = text_fields(self.config, data)
        self.fields = list(dict.fromkeys(self.left_fields + self.right_fields))
        model = SentenceTransformer(str(model_dir), device="cpu", trust_remote_code=True)
        self.model = with_backend(model, self.config.model.backend)  # as the run's evaluation encoded
        self._head = PairHead.load(model_dir / "head")
        self.mark = isinstance(self.model[0], ContextPooling) and self.model[0].scope != "sentence"

    def describe(self) -> dict:
        """What a client needs to build a request: the fields of each side and the threshold."""
        return {"left_fields": self.left_fields, "right_fields": self.right_fields, "threshold": self.threshold}

    def _context(self, record: Record) -> str:
        """A definitions run's context text, its target span marked when the encoder pools by target."""
        from simlab.models.context_pooling import mark_target

        drop = {"char_start", "char_end"} | ({"target"} - set(self.left_fields))  # the span, not text
        fields = {k: v for k, v in record.items() if k not in drop} if isinstance(record, Mapping) else record
        text = record_text(fields, self.left_fields, " ", "left")
        if not self.mark or not isinstance(record, Mapping):
            return text
        start, end = record.get("char_start"), record.get("char_end")
        if (start is None or end is None) and isinstance(record.get("target"), str) and record["target"].strip():
            start = text.lower().find(record["target"].strip().lower())
            end = start + len(record["target"].strip()) if start >= 0 else None
        if isinstance(start, int) and isinstance(end, int) and 0 <= start < end <= len(text):
            return mark_target(text, start, end)
        return text

    def score(self, left: Record, right: Record) -> tuple[float, bool]:
        """(score, score >= the frozen threshold) of the pair.

        Raises:
            DataError: a record is empty, names an unknown field, or the run needs images.
        """
        import torch

        if self.image_field:
            raise DataError(
                f"this run's records have an image (data.image_field: {self.image_field}); matching here takes "
                "text records only: use `simlab match` with tables of image paths"
            )
        if self._head is not None:
            a_text = self._context(left)
            b_text = record_text(right, self.right_fields, " ", "right")
        else:
            a_text = record_text(left, self.fields, self.sep, "left")
            b_text = record_text(right, self.fields, self.sep, "right")
        with torch.no_grad():
            emb = self.model.encode([a_text, b_text], convert_to_tensor=True, show_progress_bar=False).float()
            if self._head is not None:
                value = float(torch.sigmoid(self._head(emb[:1], emb[1:])).item())
            elif self.distance == "euclidean":
                value = -float(torch.linalg.norm(emb[0] - emb[1]))
            else:
                value = float(torch.nn.functional.cosine_similarity(emb[:1], emb[1:]).item())
        return value, value >= self.threshold


class LabelClassifier:
    """A multilabel run's model with its labels and frozen per-label thresholds, loaded once.

    Raises:
        RunFolderError: not a finished multilabel run, or its model is missing.
    """

    def __init__(self, run_dir: str | Path) -> None:
        from simlab.models.multilabel import load_multilabel_model
        from simlab.tasks.skeleton import run_task

        self.path = Path(run_dir)
        task = run_task(self.path).name
        if task != "multilabel":
            raise RunFolderError(f"{self.path} is a {task} run; classifying takes multilabel runs")
        model_dir = _model_dir(self.path)
        fsutil.verify_manifest(self.path, under=("model",))
        self.model, meta = load_multilabel_model(model_dir)
        self.kind = meta["kind"]
        self.labels: list[str] = list(meta["labels"])
        self.thresholds = np.asarray(meta["thresholds"], dtype=np.float64)  # (L,)

    def describe(self) -> dict:
        return {"kind": self.kind, "labels": self.labels, "thresholds": dict(zip(self.labels, self.thresholds))}

    def classify(self, text: str) -> list[tuple[str, float, float, bool]]:
        """(label, probability, threshold, probability >= threshold) of every label, most probable first.

        Raises:
            DataError: an empty text, or an image run (it classifies images, not texts).
        """
        import torch

        from simlab.training.multilabel import predict_logits

        if self.kind != "text":
            raise DataError(f"{self.path} classifies images; classifying here takes texts (a text multilabel run)")
        if not isinstance(text, str) or not text.strip():
            raise DataError("the text is empty; give the text to classify")
        with torch.no_grad():
            probs = torch.sigmoid(predict_logits(self.model, [text])).double().numpy()[0]  # (L,), as the run scored
        rows = [(lab, float(p), float(t), bool(p >= t)) for lab, p, t in zip(self.labels, probs, self.thresholds)]
        return sorted(rows, key=lambda r: -r[1])
