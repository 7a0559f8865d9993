"""`FieldFusion` (simlab.models.fields): per-field encoders, fusion, training, saving, and a pairs run."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from simlab.models.fields import FIELD_SEP, FieldFusion

RECORDS = [f"acme laptop x1{FIELD_SEP}999.00", f"globex printer{FIELD_SEP}", f"{FIELD_SEP}12.50"]


@pytest.fixture(scope="module")
def static():
    """A small StaticEmbedding (WordLlama's tokenizer, random 8-d weights)."""
    from sentence_transformers.sentence_transformer.modules import StaticEmbedding

    from simlab.models.wordllama import build_wordllama

    torch.manual_seed(0)
    return StaticEmbedding(build_wordllama()[0].tokenizer, embedding_dim=8)


def _own(encoder, texts: list[str]) -> np.ndarray:
    """`encoder`'s own embedding of each text, computed directly."""
    with torch.no_grad():
        return encoder(encoder.preprocess(texts))["sentence_embedding"].numpy()


def _model(encoders, n_fields=2, fusion="concat", normalize=False):
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize

    ff = FieldFusion(encoders, n_fields=n_fields, fusion=fusion)
    return SentenceTransformer(modules=[ff, Normalize()] if normalize else [ff], device="cpu")


def _fields(i: int) -> list[str]:
    return [r.split(FIELD_SEP)[i] for r in RECORDS]


def test_concat_is_each_fields_own_embedding_side_by_side(static):
    encoders = [copy.deepcopy(static), copy.deepcopy(static)]
    with torch.no_grad():
        encoders[1].embedding.weight.mul_(-2.0)  # the two encoders differ
    got = _model(encoders).encode(RECORDS)
    expected = np.concatenate([_own(encoders[0], _fields(0)), _own(encoders[1], _fields(1))], axis=1)
    assert got.shape == (3, 16)
    assert np.allclose(got, expected, atol=1e-6)
    assert _model(encoders).get_embedding_dimension() == 16


def test_mean_is_the_mean_of_the_fields_embeddings(static):
    encoders = [copy.deepcopy(static), copy.deepcopy(static)]
    with torch.no_grad():
        encoders[1].embedding.weight.add_(1.0)
    got = _model(encoders, fusion="mean").encode(RECORDS)
    expected = (_own(encoders[0], _fields(0)) + _own(encoders[1], _fields(1))) / 2
    assert got.shape == (3, 8) and np.allclose(got, expected, atol=1e-6)


def test_shared_uses_one_encoder_for_every_field(static):
    enc = copy.deepcopy(static)
    model = _model([enc], n_fields=3)
    ff = model[0]
    assert ff.shared and ff.encoder(0) is ff.encoder(1) is ff.encoder(2) is enc
    assert sum(p.numel() for p in model.parameters()) == enc.embedding.weight.numel()
    got = model.encode([f"a{FIELD_SEP}b{FIELD_SEP}c", "a"])  # a plain string is field 0, the rest empty
    assert np.allclose(got[0], np.concatenate([_own(enc, [t])[0] for t in "abc"]), atol=1e-6)
    assert np.allclose(got[1, 8:], 0.0)
    with pytest.raises(ValueError, match="4 fields"):
        model.encode([FIELD_SEP.join("abcd")])


def test_separate_encoders_diverge_with_training_and_shared_stays_one(static):
    from sentence_transformers.sentence_transformer.losses import ContrastiveLoss

    left = [f"acme laptop{FIELD_SEP}999", f"globex printer{FIELD_SEP}120"]
    right = [f"laptop acme{FIELD_SEP}999.0", f"hooli camera{FIELD_SEP}45"]
    labels = torch.tensor([1.0, 0.0])
    for encoders in ([copy.deepcopy(static), copy.deepcopy(static)], [copy.deepcopy(static)]):
        model = _model(encoders, normalize=True)
        before = [e.embedding.weight.detach().clone() for e in encoders]
        opt = torch.optim.SGD(model.parameters(), lr=1.0)
        loss = ContrastiveLoss(model, margin=0.5)
        for _ in range(2):
            opt.zero_grad()
            loss([model.preprocess(left), model.preprocess(right)], labels).backward()
            opt.step()
        ff = model[0]
        assert all(not torch.equal(b, e.embedding.weight) for b, e in zip(before, encoders))  # gradients reached each
        if len(encoders) == 2:
            assert not torch.equal(ff.encoder(0).embedding.weight, ff.encoder(1).embedding.weight)
        else:
            assert ff.n_encoders == 1 and ff.encoder(0) is ff.encoder(1)


@pytest.mark.parametrize("shared", [False, True])
def test_save_and_reload_give_identical_embeddings(static, tmp_path, shared):
    from sentence_transformers import SentenceTransformer

    encoders = [copy.deepcopy(static)] if shared else [copy.deepcopy(static), copy.deepcopy(static)]
    with torch.no_grad():
        encoders[-1].embedding.weight.mul_(3.0)
    model = _model(encoders, fusion="mean", normalize=True)
    model.save(str(tmp_path / "m"))
    loaded = SentenceTransformer(str(tmp_path / "m"), device="cpu", trust_remote_code=True)
    assert isinstance(loaded[0], FieldFusion) and loaded[0].n_encoders == len(encoders)
    assert (loaded[0].n_fields, loaded[0].fusion) == (2, "mean")
    assert np.array_equal(loaded.encode(RECORDS), model.encode(RECORDS))


def test_record_text_keeps_empty_fields_in_place():
    from simlab.data.matching import Records

    records = Records(["1"], {"name": [" acme "], "brand": [""], "price": [f"9{FIELD_SEP}9"]})
    assert records.text(0, ["name", "brand", "price"]) == "acme 9\x1f9"
    assert records.text(0, ["name", "brand", "price"], FIELD_SEP) == f"acme{FIELD_SEP}{FIELD_SEP}9 9"


def test_separate_fields_pairs_run_trains_saves_and_matches(tmp_path):
    from sentence_transformers import SentenceTransformer
    from test_pairs_run import write_records

    from simlab.experiments.match import match_tables
    from simlab.experiments.runner import run_experiment
    from simlab.tasks import load_config

    write_records(tmp_path / "records.csv")
    cfg = load_config(
        None,
        [
            "task=pairs",
            f"data.path={tmp_path / 'records.csv'}",
            "data.fields=[name, price]",
            "data.val_ratio=0.25",
            "data.test_ratio=0.25",
            "model.fields_encoder=separate",
            "train.epochs=1",
            "train.batch_size=16",
            "tracking.mlflow=false",
        ],
    )
    summary = run_experiment(cfg, tmp_path / "run")
    assert 0 <= summary.metrics["trained"]["f1"] <= 1
    model = SentenceTransformer(str(tmp_path / "run" / "model"), device="cpu", trust_remote_code=True)
    ff = model[0]
    assert isinstance(ff, FieldFusion) and (ff.n_fields, ff.n_encoders, ff.fusion) == (2, 2, "concat")
    assert not torch.equal(ff.encoder(0).embedding.weight, ff.encoder(1).embedding.weight)
    assert model.get_embedding_dimension() == 512

    out = tmp_path / "matches.csv"
    report = match_tables(tmp_path / "run", tmp_path / "records.csv", tmp_path / "records.csv", out, k=2, index="flat",
                          threshold=-1.0, progress=False)  # fmt: skip
    rows = [r.split(",") for r in out.read_text().splitlines()[1:]]
    assert report.n_candidates == 2 * report.n_left
    assert all(float(s) == pytest.approx(1.0, abs=1e-5) for a, b, s in rows if a == b)  # each record finds itself


def test_fields_encoder_needs_a_static_embedding_model(monkeypatch):
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Dense

    import simlab.models
    from simlab.errors import ConfigError
    from simlab.tasks import load_config
    from simlab.tasks.pairs.run import pair_model

    monkeypatch.setattr(simlab.models, "load_model", lambda cfg: SentenceTransformer(modules=[Dense(4, 4)]))
    cfg = load_config(None, ["task=pairs", "data.path=x", "model.fields_encoder=shared"])
    with pytest.raises(ConfigError, match="needs a static embedding model.*Dense"):
        pair_model(cfg, 2)
