"""SPLADE models: vocabulary mask, training (loss and FLOPS), inspect, sparse runs."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from simlab.config import ModelConfig, TrainConfig
from simlab.errors import ConfigError, IndexMismatchError, ModelLoadError, RunFolderError
from simlab.tasks import load_config

PUNCT = [".", ",", "!", "?", ";", ":", "...", "'", '"', ")"]
TEXTS = [
    "boundary layer flow over a flat plate .",
    "heat transfer , in supersonic flow !",
    "how to bake sourdough bread at home ?",
    "fixing a flat bicycle tyre with a patch kit ; quick",
    "the telescope shows the rings of saturn ...",
    "pressure distribution on a swept wing : results",
]


@pytest.fixture(scope="module")
def tiny_mlm_dir(tiny_bert_dir, tmp_path_factory) -> Path:
    """A random 2-layer BertForMaskedLM over the tiny_bert_dir tokenizer plus punctuation and [unused*] tokens."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForMaskedLM

    folder = tmp_path_factory.mktemp("tiny-mlm")
    tok = AutoTokenizer.from_pretrained(str(tiny_bert_dir))
    tok.add_tokens(PUNCT + ["[unused0]", "[unused1]"])
    tok.save_pretrained(folder)
    config = BertConfig(
        vocab_size=len(tok),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
    )
    torch.manual_seed(0)
    BertForMaskedLM(config).save_pretrained(folder)
    return folder


def sparse_cfg(path: Path, **sparse) -> ModelConfig:
    return ModelConfig(name=str(path), kind="sparse", max_length=32, sparse=sparse)


def encode_all(model, texts=TEXTS):
    from simlab.models.sparse import encode_sparse

    return encode_sparse(model, texts, "query"), encode_sparse(model, texts, "document")


def test_masked_token_ids_by_category(tiny_mlm_dir):
    from transformers import AutoTokenizer

    from simlab.models.vocab_mask import masked_token_ids

    tok = AutoTokenizer.from_pretrained(str(tiny_mlm_dir))
    vocab = tok.get_vocab()
    punct = masked_token_ids(tok, ["punctuation"])
    assert {vocab[p] for p in PUNCT} <= set(punct)
    assert vocab["flow"] not in punct
    assert set(masked_token_ids(tok, ["special"])) == set(tok.all_special_ids)
    assert set(masked_token_ids(tok, ["unused"])) == {vocab["[unused0]"], vocab["[unused1]"]}
    stop = masked_token_ids(tok, ["stopwords"], stopwords=["the", "a"])
    assert vocab["the"] in stop and vocab["flow"] not in stop
    with pytest.raises(ValueError, match="choose from"):
        masked_token_ids(tok, ["emoji"])


def test_mask_removes_every_masked_token_from_every_output(tiny_mlm_dir, tmp_path):
    import torch

    from simlab.models.sparse import load_saved_sparse, load_sparse_model
    from simlab.models.vocab_mask import VocabularyMask

    plain = load_sparse_model(sparse_cfg(tiny_mlm_dir))
    masked = load_sparse_model(sparse_cfg(tiny_mlm_dir, mask=["punctuation", "special", "unused"]))
    mask = next(m for m in masked if isinstance(m, VocabularyMask))
    ids = np.array(mask.masked_ids)
    assert len(ids) >= len(PUNCT) + 2
    for before, after in zip(encode_all(plain), encode_all(masked)):
        assert before[:, ids].nnz > 0  # a random model does weight these tokens: the test can fail
        assert after[:, ids].nnz == 0  # every masked id is zero in every query and document vector
        keep = np.setdiff1d(np.arange(before.shape[1]), ids)
        np.testing.assert_allclose(after[:, keep].toarray(), before[:, keep].toarray(), rtol=1e-5, atol=1e-6)
    # in training mode (what the loss sees) too
    masked.train()
    features = masked.tokenize(TEXTS)
    emb = masked(features)["sentence_embedding"]
    assert torch.count_nonzero(emb[:, ids]) == 0
    masked.eval()
    # saved with the model: a reload keeps the mask
    masked.save(str(tmp_path / "model"))
    modules = json.loads((tmp_path / "model" / "modules.json").read_text())
    assert modules[-1]["type"] == "simlab.models.vocab_mask.VocabularyMask"
    again = load_saved_sparse(tmp_path / "model")
    for a, b in zip(encode_all(masked), encode_all(again)):
        assert b[:, ids].nnz == 0
        np.testing.assert_allclose(a.toarray(), b.toarray(), rtol=1e-5, atol=1e-6)
    inference_free = load_sparse_model(sparse_cfg(tiny_mlm_dir, mask=["punctuation"], inference_free=True), TEXTS)
    q, d = encode_all(inference_free)
    punct = np.array(inference_free[-1].masked_ids)
    assert q[:, punct].nnz == 0 and d[:, punct].nnz == 0


def test_saved_model_with_foreign_module_is_refused(tmp_path):
    from simlab.models.sparse import load_saved_sparse

    (tmp_path / "modules.json").write_text(json.dumps([{"idx": 0, "name": "0", "path": "", "type": "evil.Module"}]))
    with pytest.raises(ModelLoadError, match="outside sentence-transformers and simlab"):
        load_saved_sparse(tmp_path)


def test_sparse_model_config_errors(tiny_bert_dir):
    from simlab.models.sparse import load_sparse_model

    with pytest.raises(ModelLoadError, match="dense model"):
        load_sparse_model(ModelConfig(name="wordllama", kind="sparse"))
    with pytest.raises(ModelLoadError, match="not a masked-language model"):
        load_sparse_model(ModelConfig(name=str(tiny_bert_dir), kind="sparse"))
    with pytest.raises(ModelLoadError, match="hub is unreachable"):
        load_sparse_model(ModelConfig(name="naver/splade-cocondenser-ensembledistil", kind="sparse"))
    with pytest.raises(ConfigError, match="model.sparse.mask"):
        load_config(None, ["model.kind=sparse", "model.sparse.mask=[emoji]"])


def _train(tiny_mlm_dir, tmp_path, q_weight, d_weight):
    from simlab.models.sparse import load_sparse_model
    from simlab.training.mining import MinedPairs
    from simlab.training.sparse import train_sparse

    model = load_sparse_model(sparse_cfg(tiny_mlm_dir))
    queries = [t.split(" ")[0] + " " + t.split(" ")[-2] for t in TEXTS] * 2
    docs = TEXTS * 2
    negs = [[TEXTS[(i + 1) % len(TEXTS)]] for i in range(len(docs))]
    cfg = TrainConfig(
        epochs=4,
        batch_size=6,
        learning_rate=1e-3,
        scheduler={"name": "constant"},
        splade={
            "query_regularizer_weight": q_weight,
            "document_regularizer_weight": d_weight,
            "regularizer_warmup_ratio": 0.2,
            "log_every": 2,
        },
    )
    lines: list[str] = []
    result = train_sparse(model, MinedPairs(queries, docs, negs, 0), None, cfg, tmp_path, False, echo=lines.append)
    return model, result, lines


def test_training_lowers_the_loss_and_flops_makes_vectors_sparser(tiny_mlm_dir, tmp_path):
    from simlab.models.sparse import encode_sparse

    free, free_result, lines = _train(tiny_mlm_dir, tmp_path / "a", 0.0, 0.0)
    steps = free_result.steps
    assert steps[-1]["base_loss"] < steps[0]["base_loss"]
    assert lines[0].startswith("Step 2/") and "active dims q" in lines[0] and "avg loss" in lines[0]
    assert len(free_result.history) == 4 and free_result.history[0]["query_active_dims"] > 0
    flops, flops_result, _ = _train(tiny_mlm_dir, tmp_path / "b", 3.0, 3.0)
    dims = lambda m, side: encode_sparse(m, TEXTS, side).getnnz(axis=1).mean()  # noqa: E731
    assert dims(flops, "document") < 0.5 * dims(free, "document")
    assert dims(flops, "query") < 0.5 * dims(free, "query")
    assert flops_result.steps[-1]["document_active_dims"] < free_result.steps[-1]["document_active_dims"]


def test_freeze_encoder_trains_only_the_head(tiny_mlm_dir):
    from simlab.models.sparse import load_sparse_model
    from simlab.training.sparse import freeze_encoder

    model = load_sparse_model(sparse_cfg(tiny_mlm_dir))
    trainable, total = freeze_encoder(model)
    hf = model.transformers_model
    assert all(not p.requires_grad for p in hf.base_model.parameters())
    head = sum(p.numel() for n, p in hf.named_parameters() if not n.startswith(hf.base_model_prefix))
    assert trainable == head and 0 < trainable < total


def _toy_collection(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "collection.tsv").write_text("".join(f"d{i}\t{t}\n" for i, t in enumerate(TEXTS)))
    (folder / "queries.test.tsv").write_text("q1\tflat plate flow\nq2\tsourdough bread\n")
    (folder / "qrels.test.tsv").write_text("q1 0 d0 1\nq2 0 d2 1\n")
    (folder / "triples.tsv").write_text(
        "".join(f"{t.split(' ')[0]}\t{t}\t{TEXTS[(i + 2) % len(TEXTS)]}\n" for i, t in enumerate(TEXTS * 2))
    )
    return folder


def test_sparse_run_and_inspect(tiny_mlm_dir, tmp_path):
    from typer.testing import CliRunner

    from simlab.cli import app
    from simlab.experiments.runner import run_experiment
    from simlab.index.sparse import load
    from simlab.models.sparse import encode_sparse, load_saved_sparse, vocabulary_fingerprint

    data = _toy_collection(tmp_path / "toy")
    cfg = load_config(
        None,
        [
            f"data.path={data}",
            "data.triples=triples.tsv",
            "model.kind=sparse",
            f"model.name={tiny_mlm_dir}",
            "model.max_length=32",
            "model.sparse.mask=[punctuation,special]",
            "train.epochs=1",
            "train.batch_size=4",
            "train.learning_rate=0.001",
            "index.sparse_approximate=[]",
            "eval.systems=[bm25,trained,hybrid]",
            "eval.k=5",
            "tracking.mlflow=false",
        ],
    )
    out = tmp_path / "run"
    summary = run_experiment(cfg, out)
    assert set(summary.metrics) == {"bm25", "trained.flat", "hybrid"}
    assert summary.speed["trained.flat"]["docs_per_second"] > 0
    assert "query_encode_p50_ms" in summary.speed["trained.flat"]
    assert (out / "model" / "modules.json").is_file() and (out / "history.jsonl").is_file()
    model = load_saved_sparse(out / "model")
    index = load(out / "indexes" / "trained.flat", expect_vocab=vocabulary_fingerprint(model))
    assert len(index) == len(TEXTS)

    result = CliRunner().invoke(app, ["inspect", str(out), "flat plate flow .", "--top", "5", "--doc", "d0"])
    assert result.exit_code == 0, result.output
    assert "Top tokens (5):" in result.output and "Active dimensions:" in result.output
    q = encode_sparse(model, ["flat plate flow ."], "query")
    top = model.tokenizer.convert_ids_to_tokens(int(q.indices[np.argmax(q.data)]))
    assert f"{top}" in result.output and f"{q.data.max():.4f}" in result.output
    d = encode_sparse(model, [TEXTS[0]], "document")
    printed = float(re.search(r"score (\d+\.\d+)", result.output).group(1))  # 4 decimals; encodings may differ
    assert printed == pytest.approx(float(q.multiply(d).sum()), abs=2e-4)  # in the last float32 bits by batch
    assert "." not in [line.split()[1] for line in result.output.splitlines() if line[:5].strip().isdigit()]

    from simlab.experiments.search import search_run

    hits = search_run(out, "flat plate flow .", 3, "trained.flat")  # `simlab search` on a sparse run
    assert hits[0].doc_id == index.search(q, 1)[0][0][0]
    assert hits[0].score == pytest.approx(float(index.search(q, 1)[1][0, 0]), rel=1e-5)

    # a model over another vocabulary cannot use this index
    other = ModelConfig(name="bert-mlm-scratch", kind="sparse", sparse={"scratch": {"vocab_size": 120}})
    from simlab.models.sparse import load_sparse_model

    with pytest.raises(IndexMismatchError, match="another vocabulary"):
        load(out / "indexes" / "trained.flat", expect_vocab=vocabulary_fingerprint(load_sparse_model(other, TEXTS)))


def test_inspect_refuses_a_dense_run(tmp_path):
    from simlab.experiments.inspect import inspect_run
    from simlab.tasks.skeleton import RUN_FORMAT

    (tmp_path / "config.yaml").write_text(yaml.safe_dump({"model": {"kind": "dense"}}))
    (tmp_path / "meta.json").write_text(json.dumps(RUN_FORMAT | {"task": "retrieval"}))
    with pytest.raises(RunFolderError, match="is a retrieval run; `simlab inspect` takes runs of task sparse"):
        inspect_run(tmp_path, "query")


def test_inspect_an_evaluation_only_run_uses_the_configured_model(tiny_mlm_dir, tmp_path):
    from simlab.experiments.inspect import inspect_run

    data = _toy_collection(tmp_path / "toy")
    from simlab.fsutil import staged_dir
    from simlab.tasks.skeleton import RUN_FORMAT

    cfg = {"model": {"kind": "sparse", "name": str(tiny_mlm_dir), "max_length": 32, "sparse": {"mask": ["special"]}}}
    with staged_dir(tmp_path / "run") as folder:  # a run folder with no model: an evaluation-only run
        (folder / "config.yaml").write_text(yaml.safe_dump(cfg))
        (folder / "meta.json").write_text(json.dumps(RUN_FORMAT | {"task": "sparse", "data": str(data)}))
    ins = inspect_run(tmp_path / "run", "flat plate", top=3, doc_id="d0")
    assert "zero-shot" in ins.model and len(ins.tokens) == 3 and ins.doc_id == "d0"
    shown = sum(q * d for _, q, d in ins.overlap)  # the 3 largest products of the n_shared that make the score
    assert ins.n_shared >= len(ins.overlap) and ins.score >= shown - 1e-6
    assert [q * d for _, q, d in ins.overlap] == sorted((q * d for _, q, d in ins.overlap), reverse=True)
    assert all("[" not in t for t, _ in ins.tokens)  # special tokens masked


def test_int8_quantized_copy_stays_close_and_leaves_the_model_float32(tiny_mlm_dir):
    from simlab.models.sparse import encode_sparse, load_sparse_model, quantize_for_cpu

    model = load_sparse_model(sparse_cfg(tiny_mlm_dir))
    quantized = quantize_for_cpu(model)
    assert any(type(m) is torch.nn.Linear for m in model.modules())
    assert not any(type(m) is torch.nn.Linear for m in quantized.modules()), "every Linear is quantized"
    a, b = (encode_sparse(m, TEXTS, "document").toarray() for m in (model, quantized))
    assert a.shape == b.shape
    cos = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    assert cos.min() > 0.95
