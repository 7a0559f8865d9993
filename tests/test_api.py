"""The Python API: experiments run, loaded and compared without the CLI; parts plugged in by name."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import simlab


@pytest.fixture(scope="module")
def beir(tmp_path_factory) -> Path:
    from test_run_e2e import make_collection

    from simlab.data.beir import write_beir

    folder = tmp_path_factory.mktemp("api") / "beir"
    write_beir(make_collection(), folder)
    return folder


def test_two_experiments_and_their_comparison_from_python(beir, tmp_path):
    config = {
        "task": "retrieval",
        "name": "api",
        "data": {"path": str(beir)},
        "train": {"epochs": 1, "batch_size": 8},
        "index": {"approximate": []},
        "eval": {"systems": ["bm25", "zeroshot", "trained"]},
        "tracking": {"mlflow": False},
    }
    one = simlab.run(config, out=tmp_path / "one")
    two = simlab.run(config, overrides=["train.epochs=2", "train.learning_rate=0.2"], out=tmp_path / "two")
    assert isinstance(one, simlab.Run) and one.config.train.epochs == 1 and two.config.train.epochs == 2
    assert one.main_system == "trained.flat" and one.main_metric == "ndcg@10"
    assert one.chosen["system"] in one.systems and one.chosen["by"] == "val_ndcg@10"
    assert one.score == json.loads((tmp_path / "one" / "metrics.json").read_text())["trained.flat"]["ndcg@10"]
    assert one.systems == ["bm25", "zeroshot.flat", "trained.flat"]
    assert simlab.load_run(tmp_path / "two").metrics == two.metrics

    hits = one.search("compost soil", k=3)
    assert len(hits) == 3 and hits[0].score >= hits[-1].score

    table = simlab.compare([one, two], metrics=["ndcg@10"], test="student", correction="none")
    assert table.baseline == "one/trained.flat" and table.systems == ["one/trained.flat", "two/trained.flat"]
    (row,) = table.results
    assert row.mean == pytest.approx(two.score) and row.baseline_mean == pytest.approx(one.score)
    assert "| two/trained.flat |" in table.to_markdown()
    frame = table.to_frame()
    assert list(frame["system"]) == ["two/trained.flat"] and frame.loc[0, "delta"] == pytest.approx(row.delta)

    within = simlab.compare([one], metrics=["ndcg@10"])  # one run: all its systems against the first
    assert within.baseline == "bm25" and {r.system for r in within.results} == {"zeroshot.flat", "trained.flat"}


def test_a_custom_loss_registered_by_name_is_used_by_a_run(tmp_path):
    from sentence_transformers.sentence_transformer.losses import ContrastiveLoss
    from test_pairs_run import grouped_overrides, write_records

    calls = []

    @simlab.register_loss("counted-contrastive")
    def counted(model, cfg):
        loss = ContrastiveLoss(model, margin=cfg.margin)
        loss.register_forward_hook(lambda *_: calls.append(1))
        return loss

    write_records(tmp_path / "records.csv")
    run = simlab.run(
        Path(__file__).parents[1] / "examples" / "matching.yaml",
        overrides=[*grouped_overrides(tmp_path), "train.epochs=1", "train.loss=counted-contrastive"],
        out=tmp_path / "run",
    )
    assert run.config.train.loss == "counted-contrastive" and calls, "the registered loss was not trained with"
    assert "train:\n" in (tmp_path / "run" / "config.yaml").read_text()
    assert "loss: counted-contrastive" in (tmp_path / "run" / "config.yaml").read_text()


def test_import_simlab_stays_light():
    code = (
        "import sys, simlab; simlab.load_config; simlab.register_task; "
        "heavy = [m for m in ('torch', 'sentence_transformers', 'faiss', 'mlflow', 'ray') if m in sys.modules]; "
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_unknown_api_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'runn'"):
        simlab.runn  # noqa: B018
