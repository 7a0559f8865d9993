"""Converters that write multi-label datasets from sources shipped with installed packages.

- `digits`: scikit-learn's bundled handwritten digits (`sklearn.datasets.load_digits`: 1,797
  8x8 greyscale images, UCI "Optical Recognition of Handwritten Digits", test part) as PNG
  files plus `labels.csv`, with attribute labels derived from the digit: `even`, `prime`,
  `ge5` (at least 5), `loop` (has a closed loop: 0, 6, 8, 9).
- `demo-topics`: the texts of the project's demonstration collection (`examples/demo`: 240
  documents and 120 queries in 12 topics, CC0) with multi-label tags: the topic and the broad
  themes it belongs to (`TOPIC_THEMES`). Each text's labels follow from its topic, so this set
  is a smoke test of the text path, not a benchmark.
"""

from __future__ import annotations

import json
from pathlib import Path

from simlab import fsutil
from simlab.errors import DataError

DIGIT_ATTRIBUTES = {
    "even": lambda d: d % 2 == 0,
    "prime": lambda d: d in (2, 3, 5, 7),
    "ge5": lambda d: d >= 5,
    "loop": lambda d: d in (0, 6, 8, 9),
}


def digit_labels(digit: int) -> list[str]:
    """The attribute labels of a digit, e.g. 8 -> ['even', 'ge5', 'loop']."""
    return [name for name, has in DIGIT_ATTRIBUTES.items() if has(digit)]


def convert_digits(src: Path | None, out: Path, overwrite: bool = False) -> dict:
    """Write `out/images/<i>.png` (8x8 greyscale, 0-255) and `out/labels.csv` (id,image,digit,labels).

    `src` is unused: the images ship inside scikit-learn.
    """
    import numpy as np
    from PIL import Image
    from sklearn.datasets import load_digits

    out = Path(out)
    if out.exists() and not overwrite:
        raise DataError(f"{out} already exists; choose another --out or pass --overwrite.")
    digits = load_digits()
    rows = ["id,image,digit,labels\n"]
    with fsutil.staged_dir(out, overwrite=overwrite) as tmp:
        (tmp / "images").mkdir()
        for i, (img, digit) in enumerate(zip(digits.images, digits.target)):
            pixels = np.clip(np.rint(img * 255.0 / 16.0), 0, 255).astype(np.uint8)  # values are 0..16
            Image.fromarray(pixels, mode="L").save(tmp / "images" / f"{i:04d}.png")
            rows.append(f"d{i:04d},images/{i:04d}.png,{int(digit)},{'|'.join(digit_labels(int(digit)))}\n")
        fsutil.write_text(tmp / "labels.csv", "".join(rows))
        fsutil.write_text(
            tmp / "README.md",
            "# digits attributes\n\nWritten by `simlab data convert digits` from scikit-learn's bundled "
            "`load_digits` (1,797 8x8 images; UCI Optical Recognition of Handwritten Digits). Labels per image: "
            + ", ".join(DIGIT_ATTRIBUTES)
            + " (derived from the digit; `ge5` = at least 5, `loop` = 0, 6, 8, 9).\n",
        )
    return {"items": len(digits.target), "labels": list(DIGIT_ATTRIBUTES), "path": str(out)}


TOPIC_THEMES: dict[str, list[str]] = {
    "cooking": ["food_drink", "home"],
    "bicycles": ["outdoors", "sport", "repair"],
    "gardening": ["plants", "outdoors", "home"],
    "networking": ["technology", "home", "repair"],
    "astronomy": ["science", "outdoors"],
    "first_aid": ["health"],
    "finance": ["money"],
    "coffee": ["food_drink"],
    "photography": ["technology", "outdoors"],
    "running": ["sport", "health", "outdoors"],
    "houseplants": ["plants", "home"],
    "python": ["technology"],
}
"""The 12 demo topics in id order (20 documents and 10 queries each) and their themes."""


def convert_demo_topics(src: Path, out: Path, overwrite: bool = False) -> dict:
    """Write `out/texts.jsonl` ({"id", "text", "labels"}) from the demo collection in `src`."""
    from simlab.data.lines import iter_jsonl

    src, out = Path(src), Path(out)
    topics = list(TOPIC_THEMES)
    rows = []
    for name, per_topic in (("corpus.jsonl", 20), ("queries.jsonl", 10)):
        for where, obj in iter_jsonl(src / name):
            try:
                n = int(str(obj["_id"])[1:])
            except (KeyError, ValueError):
                raise DataError(f"{where}: expected an _id like d001 or q001 (the demo collection).") from None
            topic = topics[(n - 1) // per_topic]
            text = " ".join(t for t in (obj.get("title", ""), obj.get("text", "")) if t)
            rows.append({"id": obj["_id"], "text": text, "labels": [topic, *TOPIC_THEMES[topic]]})
    target = out / "texts.jsonl"
    if target.exists() and not overwrite:
        raise DataError(f"{target} already exists; pass --overwrite to replace it.")
    fsutil.write_text(target, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    return {"items": len(rows), "labels": sorted({lab for r in rows for lab in r["labels"]}), "path": str(target)}


REUTERS_VAL_SHARE = 0.1
"""Share of the ModApte training documents held out as val (a fixed draw, seed 42): the split has no val."""


def convert_reuters21578(src: Path, out: Path, overwrite: bool = False) -> dict:
    """Write `out/texts.jsonl` ({"id", "text", "labels", "split"}) from Reuters-21578 ModApte in NLTK's layout
    (`cats.txt`, `training/`, `test/`): test is ModApte's test; val a fixed `REUTERS_VAL_SHARE` of its training."""
    import random

    cats = src / "cats.txt"
    if not cats.is_file():
        raise DataError(f"{src}: no cats.txt; give the NLTK `reuters` folder (cats.txt, training/, test/)")
    rows = []
    for n, line in enumerate(cats.read_text(encoding="utf-8").splitlines(), 1):
        doc, *labels = line.split()
        if not labels or "/" not in doc:
            raise DataError(f"{cats}:{n}: expected '<split>/<id> <label> [<label> ...]', got {line!r}")
        path = src / doc
        if not path.is_file():
            raise DataError(f"{cats}:{n}: {path} is missing; the folder is incomplete")
        text = " ".join(path.read_bytes().decode("utf-8", errors="replace").split())  # one stray byte in test/17980
        split = "test" if doc.startswith("test/") else "train"
        rows.append({"id": doc, "text": text, "labels": labels, "split": split})
    train = [r for r in rows if r["split"] == "train"]
    for r in random.Random(42).sample(train, round(len(train) * REUTERS_VAL_SHARE)):
        r["split"] = "val"
    target = out / "texts.jsonl"
    if target.exists() and not overwrite:
        raise DataError(f"{target} already exists; pass --overwrite to replace it.")
    fsutil.write_text(target, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    return {"items": len(rows), "labels": sorted({lab for r in rows for lab in r["labels"]}), "path": str(target)}
