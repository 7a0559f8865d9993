"""MiniLM on CPU per `model.backend`: encode throughput and quality against float32 torch.

Every backend is `simlab.models.backends.with_backend(minilm, name)`, the path evaluation, indexing
and search take. Throughput: texts per second encoding NFCorpus documents (title + abstract, up to
256 tokens; batch 32, sentence-transformers' default) and WiC-TSV usage examples (short), median of
`--repeats` timed passes after one warm-up pass (exports are made, and cached, before any
timing; the backends are timed in turn, round after round, so a load from elsewhere falls on all of
them alike). Quality, zero-shot: nDCG@10 of exact search over the whole NFCorpus corpus (3,633 documents)
for its 324 dev queries, and WiC-TSV accuracy on Development, cosine of usage example vs definition
with the accuracy-optimal threshold chosen on Training (`simlab.evaluation.pairs.best_threshold`).
Target (issue 18): the fastest backend whose quality is within 0.005 of float32 torch on both is at
least 2x float32 torch's document throughput.

    python benchmarks/bench_backends.py --data ../shared/data --out BENCHMARKS.md
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import emit, machine, md_table, quiet_logs  # noqa: E402

HEADING = "Transformer backends on CPU: MiniLM per model.backend"
BACKENDS = ["torch", "torch-int8", "onnx", "onnx-int8", "openvino"]
TOLERANCE, TARGET = 0.005, 2.0
NOTES = [
    "Not measured, because they cannot be installed beside this environment (transformers 5.24, huggingface_hub "
    '2.4, torch 2.13.0+cpu): sentence-transformers\' own `backend="onnx"` / `"openvino"` and its int8 '
    "export helpers (`export_dynamic_quantized_onnx_model`, `export_static_quantized_openvino_model`), which "
    'load models through Optimum. `pip install --dry-run "optimum-onnx[onnxruntime]"` (0.1.0, the newest; it '
    "requires `transformers<4.58.0`): `Would install ... huggingface_hub-0.36.2 ... optimum-2.1.0 "
    'optimum-onnx-0.1.0 tokenizers-0.22.2 transformers-4.57.6`. `pip install --dry-run "optimum-intel[openvino]"` '
    "(2.2.0; requires `transformers<5.6`, `huggingface-hub<1.22`): `Would install cuda-bindings-13.5.0 ... "
    "huggingface_hub-1.21.0 ... nvidia-cublas-13.1.1.3 ... optimum-intel-2.2.0 ... torch-2.14.1 torchvision-0.29.1 "
    "transformers-5.5.4 triton-3.8.0 ...`. simlab's `onnx`, `onnx-int8` and `openvino` backends are built instead "
    "on what installs cleanly: torch's dynamo ONNX exporter (onnxscript 0.7.2), onnxruntime 1.32.0 and "
    "`onnxruntime.quantization.quantize_dynamic`, and the OpenVINO runtime alone (`openvino` 2026.4.1, which reads "
    "the ONNX export). OpenVINO int8 (NNCF post-training quantisation with a calibration set) is not offered: "
    "`nncf` installs, but its static quantisation needs calibration texts per model, not built here.",
]


def wic_tsv(folder: Path, split: str, prefix: str) -> tuple[list[str], list[str], np.ndarray]:
    """(usage examples, definitions, labels) of one WiC-TSV split folder."""
    examples = [line.split("\t")[2] for line in (folder / split / f"{prefix}_examples.txt").read_text().splitlines()]
    definitions = (folder / split / f"{prefix}_definitions.txt").read_text().splitlines()
    labels = np.array([x.strip() == "T" for x in (folder / split / f"{prefix}_labels.txt").read_text().splitlines()])
    return examples, definitions, labels.astype(int)


def cosine(model, left: list[str], right: list[str]) -> np.ndarray:
    a = model.encode(left, batch_size=32, convert_to_numpy=True, normalize_embeddings=True)
    b = model.encode(right, batch_size=32, convert_to_numpy=True, normalize_embeddings=True)
    return (a * b).sum(1)


def quality(model, name: str, data: dict) -> dict:
    """nDCG@10 on NFCorpus dev and WiC-TSV dev accuracy of `model` (zero-shot), and its first document vectors."""
    from simlab.evaluation.metrics import evaluate
    from simlab.evaluation.pairs import best_threshold
    from simlab.records import Run

    corpus, queries = data["corpus"], data["queries"]
    docs = model.encode(corpus.full_texts(), batch_size=32, convert_to_numpy=True, normalize_embeddings=True)
    qs = model.encode(queries.texts, batch_size=32, convert_to_numpy=True, normalize_embeddings=True)
    scores = qs @ docs.T  # (n_queries, n_docs): exact search
    top = np.argsort(-scores, axis=1)[:, :10]
    run = Run.from_topk(
        name, queries.ids, [[corpus.ids[j] for j in r] for r in top], np.take_along_axis(scores, top, 1)
    )
    threshold, _ = best_threshold(cosine(model, *data["wic_train"][:2]), data["wic_train"][2], by="accuracy")
    dev_scores = cosine(model, *data["wic_dev"][:2])
    return {
        "backend": name,
        "ndcg@10": evaluate(data["qrels"], run, ["ndcg@10"]).means["ndcg@10"],
        "accuracy": float(np.mean((dev_scores >= threshold) == data["wic_dev"][2].astype(bool))),
        "vectors": docs[: len(data["sample"])],
    }


def throughput(models: dict, data: dict, repeats: int) -> dict[str, dict[str, float]]:
    """Texts/s per backend, median of `repeats` rounds; each round times every backend once in turn, so load
    from other processes on the shared machine falls on all of them alike."""
    times: dict[str, dict[str, list[float]]] = {n: {"docs_per_s": [], "short_per_s": []} for n in models}
    for model in models.values():
        model.encode(data["sample"][:64], batch_size=32)  # warm-up (thread pools, first allocations)
    for round_ in range(repeats):
        for name, model in models.items():
            for key, texts in (("docs_per_s", data["sample"]), ("short_per_s", data["short"])):
                t0 = time.perf_counter()
                model.encode(texts, batch_size=32)
                times[name][key].append(time.perf_counter() - t0)
            print(f"round {round_ + 1}: {name} {len(data['sample']) / times[name]['docs_per_s'][-1]:.1f} docs/s")
    sizes = {"docs_per_s": len(data["sample"]), "short_per_s": len(data["short"])}
    return {n: {k: sizes[k] / float(np.median(v)) for k, v in t.items()} for n, t in times.items()}


def load_data(root: Path, n_sample: int) -> dict:
    from simlab.data.loader import load_collection
    from simlab.records import Queries

    collection = load_collection(root / "nfcorpus")
    qrels = collection.qrels["dev"]
    wanted = set(qrels.query_ids())
    keep = [i for i, q in enumerate(collection.queries.ids) if q in wanted]
    queries = Queries([collection.queries.ids[i] for i in keep], [collection.queries.texts[i] for i in keep])
    wic_train, wic_dev = wic_tsv(root / "wic-tsv", "Training", "train"), wic_tsv(root / "wic-tsv", "Development", "dev")
    return {
        "corpus": collection.corpus,
        "queries": queries,
        "qrels": qrels,
        "sample": collection.corpus.full_texts()[:n_sample],
        "short": wic_train[0],
        "wic_train": wic_train,
        "wic_dev": wic_dev,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sample", type=int, default=512, help="NFCorpus documents timed per pass")
    parser.add_argument("--backends", nargs="+", default=BACKENDS)
    parser.add_argument("--smoke", action="store_true", help="a few texts only, to check the script (no numbers)")
    args = parser.parse_args()
    quiet_logs()
    import torch

    from simlab.models.backends import with_backend
    from simlab.models.packaged import build_minilm

    data = load_data(args.data, args.sample)
    if args.smoke:
        from simlab.records import Corpus

        c = data["corpus"]
        data["corpus"] = Corpus(c.ids[:200], c.texts[:200], c.titles[:200])
        data["short"], data["wic_train"] = data["short"][:64], tuple(x[:200] for x in data["wic_train"])
    base = build_minilm(256)
    rows, notes, models = [], list(NOTES), {}
    for name in args.backends:
        t0 = time.perf_counter()
        models[name] = with_backend(base, name)
        prepare = time.perf_counter() - t0
        rows.append(quality(models[name], name, data) | {"prepare_s": prepare})
        print(f"{name}: nDCG@10 {rows[-1]['ndcg@10']:.4f}, accuracy {rows[-1]['accuracy']:.4f}", flush=True)
    speeds = throughput(models, data, args.repeats)
    for row in rows:
        row.update(speeds[row["backend"]])
    ref = rows[0]
    table, eligible = [], []
    for row in rows:
        cos = (row["vectors"] * ref["vectors"]).sum(1)
        d_ndcg, d_acc = row["ndcg@10"] - ref["ndcg@10"], row["accuracy"] - ref["accuracy"]
        speed = row["docs_per_s"] / ref["docs_per_s"]
        within = d_ndcg >= -TOLERANCE and d_acc >= -TOLERANCE
        if within:
            eligible.append((speed, row["backend"]))
        table.append(
            [
                f"`{row['backend']}`",
                f"{row['docs_per_s']:.1f}",
                f"{speed:.2f}x",
                f"{row['short_per_s']:.0f}",
                f"{row['short_per_s'] / ref['short_per_s']:.2f}x",
                f"{row['ndcg@10']:.4f} ({d_ndcg:+.4f})",
                f"{row['accuracy']:.4f} ({d_acc:+.4f})",
                f"{cos.min():.4f} / {cos.mean():.5f}",
                "yes" if within else "no",
                f"{row['prepare_s']:.1f}",
            ]
        )
    best_speed, best = max(eligible)
    verdict = "PASS" if best_speed >= TARGET else "FAIL"
    import onnxruntime
    import openvino

    body = "\n\n".join(
        [
            f"Command: `python benchmarks/bench_backends.py --data ../shared/data "
            f"--repeats {args.repeats} --sample {args.sample} --out BENCHMARKS.md` (one run).",
            f"Machine: {machine()}, {torch.get_num_threads()} torch threads (ONNX Runtime and OpenVINO get the "
            f"same); onnxruntime {onnxruntime.__version__}, openvino {openvino.__version__} (its CPU inference "
            f"precision on this machine: {openvino.Core().get_property('CPU', 'INFERENCE_PRECISION_HINT')}, "
            "OpenVINO's default where the CPU has bfloat16 instructions; float32 elsewhere).",
            md_table(
                [
                    "backend",
                    "NFCorpus docs/s",
                    "vs torch",
                    "WiC-TSV examples/s",
                    "vs torch",
                    "nDCG@10 dev (delta)",
                    "WiC-TSV dev acc (delta)",
                    "cosine to torch min / mean",
                    f"within {TOLERANCE}",
                    "prepare s",
                ],
                table,
            ),
            f"Throughput: median of {args.repeats} rounds (each times every backend in turn) of one pass over "
            f"{args.sample} NFCorpus documents (title + abstract, "
            f"max 256 tokens) and {len(data['short'])} WiC-TSV training examples, batch 32. Quality: zero-shot "
            f"all-MiniLM-L6-v2 (`model.name: minilm`), nDCG@10 of exact search over all {len(data['corpus'])} "
            f"documents for the {len(data['queries'])} dev queries; WiC-TSV accuracy on Development "
            f"({len(data['wic_dev'][2])} pairs), cosine(example, definition) >= the accuracy-optimal threshold on "
            f"Training. Cosines compare each backend's document vectors with float32 torch's. `prepare s`: the "
            "copy, quantisation or export (exports are cached, so a later run only loads them).",
            f"**Target** (the fastest backend within {TOLERANCE} of float32 quality on both measures is >= "
            f"{TARGET}x float32 torch on documents): `{best}` at {best_speed:.2f}x: **{verdict}**.",
            *notes,
        ]
    )
    emit(args.out, HEADING, body)


if __name__ == "__main__":
    main()
