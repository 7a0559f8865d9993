"""Every text of ../shared/data, embedded once with the offline wordllama model and cached.

Sources: Cranfield and CISI documents and queries (`simlab.data.glasgow.read_glasgow`),
Amazon-Google and Walmart-Amazon table rows (all fields but the id, joined), WiC-TSV
contexts and definitions (all splits), Open English WordNet definitions and examples,
and the MS MARCO toy passages and queries. Exact duplicate texts are kept once.

The matrix (float32, L2-normalised, [n, 256]) is cached as `.bench/wordllama-<hash>.npy`,
where the hash covers the texts and the model, so a changed data folder re-embeds.

    python benchmarks/embed_shared_texts.py --data ../shared/data
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
CACHE = REPO / ".bench"


def _table_rows(path: Path) -> list[str]:
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return [" ".join(v.strip() for k, v in row.items() if k != "id" and v and v.strip()) for row in rows]


def _lines(path: Path, column: int | None = None) -> list[str]:
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if column is not None:
            parts = line.split("\t")
            line = parts[column] if len(parts) > column else ""
        out.append(line.strip())
    return out


def _oewn(folder: Path) -> list[str]:
    import yaml

    out: list[str] = []
    for path in sorted((folder / "src" / "yaml").glob("*.yaml")):
        with path.open(encoding="utf-8") as f:
            synsets = yaml.load(f, Loader=yaml.CSafeLoader)
        for synset in synsets.values():
            out += [str(d) for d in synset.get("definition", [])]
            out += [e["text"] if isinstance(e, dict) else str(e) for e in synset.get("example", [])]
    return out


def collect_texts(data: Path) -> dict[str, list[str]]:
    """Texts per source (in file order, before de-duplication); missing sources are skipped."""
    from simlab.data.glasgow import read_glasgow

    sources: dict[str, list[str]] = {}
    for name in ("cranfield", "cisi"):
        if (data / name).is_dir():
            col = read_glasgow(data / name)
            sources[name] = col.corpus.full_texts() + list(col.queries.texts)
    for name in ("amazon-google", "walmart-amazon"):
        if (data / name).is_dir():
            sources[name] = _table_rows(data / name / "tableA.csv") + _table_rows(data / name / "tableB.csv")
    wic = data / "wic-tsv"
    if wic.is_dir():
        texts = []
        for split, prefix in (("Training", "train"), ("Development", "dev"), ("Test", "test")):
            texts += _lines(wic / split / f"{prefix}_examples.txt", column=2)
            texts += _lines(wic / split / f"{prefix}_definitions.txt")
        sources["wic-tsv"] = texts
    if (data / "oewn-glosses").is_dir():
        sources["oewn-glosses"] = _oewn(data / "oewn-glosses")
    toy = data / "msmarco-toy-splade"
    if toy.is_dir():
        sources["msmarco-toy"] = [
            *_lines(toy / "full_collection" / "raw.tsv", column=1),
            *_lines(toy / "dev_queries" / "raw.tsv", column=1),
            *_lines(toy / "val_queries" / "raw.tsv", column=1),
        ]
    return sources


def unique_texts(sources: dict[str, list[str]]) -> list[str]:
    """Non-empty texts, each once, in source order."""
    return list(dict.fromkeys(t for texts in sources.values() for t in texts if t))


def embed_shared_texts(data: Path, cache: Path = CACHE, verbose: bool = True) -> tuple[np.ndarray, dict]:
    """(`[n, 256]` float32 normalised wordllama vectors of every unique text, info dict)."""
    from simlab.models.wordllama import MODEL_ID

    sources = collect_texts(data)
    if not sources:
        raise SystemExit(f"{data}: none of the shared datasets found.")
    texts = unique_texts(sources)
    digest = hashlib.sha256(("\n".join([MODEL_ID, *texts])).encode("utf-8")).hexdigest()[:12]
    path = cache / f"wordllama-{digest}.npy"
    info = {
        "model_id": MODEL_ID,
        "n_texts": len(texts),
        "per_source": {k: len(v) for k, v in sources.items()},
        "cache": str(path.relative_to(REPO) if path.is_relative_to(REPO) else path),
    }
    if path.is_file():
        vectors = np.load(path)
        info["embed_seconds"] = json.loads(path.with_suffix(".json").read_text()).get("embed_seconds")
        info["cached"] = True
        return vectors, info
    from simlab.models.wordllama import build_wordllama

    model = build_wordllama()
    t0 = time.perf_counter()
    vectors = model.encode(
        texts, batch_size=1024, convert_to_numpy=True, normalize_embeddings=True, show_progress_bar=verbose
    ).astype(np.float32)  # (n, 256)
    info["embed_seconds"] = round(time.perf_counter() - t0, 2)
    info["cached"] = False
    cache.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, vectors)
    tmp.replace(path)
    path.with_suffix(".json").write_text(json.dumps(info, indent=2) + "\n")
    return vectors, info


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    args = parser.parse_args(argv)
    vectors, info = embed_shared_texts(args.data)
    print(json.dumps(info, indent=2), vectors.shape, file=sys.stderr)


if __name__ == "__main__":
    main()
