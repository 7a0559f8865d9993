"""task: multilabel end to end: image and text paths train (the loss falls), run folders, deltas,
sweeps, compare and the HTML report."""

from __future__ import annotations

import json

import numpy as np
import pytest

from simlab.tasks import load_config, load_sweep
from simlab.tasks.multilabel.config import MultilabelConfig
from simlab.tasks.skeleton import read_metrics


@pytest.fixture(scope="module")
def tiny_resnet_dir(tmp_path_factory):
    """A 2-stage ResNet with 8/16 channels saved as a transformers folder (an image backbone)."""
    import torch
    from transformers import ResNetConfig, ResNetModel

    folder = tmp_path_factory.mktemp("tiny-resnet")
    torch.manual_seed(0)
    config = ResNetConfig(depths=[1, 1], hidden_sizes=[8, 16], embedding_size=8, layer_type="basic", num_channels=3)
    ResNetModel(config).save_pretrained(folder)
    return folder


def _images(folder, n=48, seed=0):
    """Images whose labels follow from the picture: `bright` (mean > 128), `left` (left half brighter)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    (folder / "img").mkdir(parents=True)
    rows = ["id,image,labels\n"]
    for i in range(n):
        bright, left = bool(i % 2), bool((i // 2) % 2)
        base = 170 if bright else 60
        pixels = np.full((8, 8), base, dtype=np.int32) + rng.integers(-15, 15, (8, 8))
        pixels[:, :4] += 60 if left else -40
        Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), mode="L").save(folder / "img" / f"{i}.png")
        labels = "|".join(name for name, on in (("bright", bright), ("left", left)) if on)
        rows.append(f"i{i},img/{i}.png,{labels}\n")
    (folder / "labels.csv").write_text("".join(rows))
    return folder


def _cfg(path, backbone, *extra) -> MultilabelConfig:
    return load_config(
        None,
        [
            "task=multilabel",
            f"data.path={path}",
            f"model.backbone={backbone}",
            "data.image_size=8",
            "data.val_ratio=0.25",
            "data.test_ratio=0.25",
            "train.batch_size=8",
            "train.learning_rate=0.01",
            "tracking.mlflow=false",
            *extra,
        ],
    )


def test_image_path_trains_and_the_loss_falls(tmp_path, tiny_resnet_dir):
    import torch

    from simlab.data.multilabel import load_images, make_splits, read_items
    from simlab.models.multilabel import build_model
    from simlab.training.multilabel import train_multilabel
    from simlab.training.multilabel_losses import build_loss

    cfg = _cfg(_images(tmp_path / "d"), tiny_resnet_dir, "train.epochs=6", "data.augment.crop_padding=1")
    splits = make_splits(read_items(cfg.data), cfg.data)
    x = {s: load_images(splits[s].inputs, 8) for s in ("train", "val")}
    y = {s: splits[s].targets(splits.vocab) for s in ("train", "val")}
    torch.manual_seed(0)
    model = build_model(cfg, "image", len(splits.vocab))
    loss_fn = build_loss(cfg.loss, y["train"])
    result = train_multilabel(
        model, x["train"], y["train"], x["val"], y["val"], loss_fn, cfg.train, cfg.scheduler, cfg.data.augment, False
    )
    losses = [h["train_loss"] for h in result.history]
    assert losses[-1] < 0.8 * losses[0], losses
    assert len(result.history) == 6 and result.best_epoch is not None
    lrs = [h["lr"] for h in result.history]
    assert lrs[1] == pytest.approx(lrs[0] * cfg.scheduler.gamma)  # ExponentialLR steps per epoch


def test_text_path_trains_and_the_loss_falls(tmp_path):
    import torch

    from simlab.models.multilabel import build_model
    from simlab.training.multilabel import train_multilabel
    from simlab.training.multilabel_losses import build_loss

    texts = ["the cat sleeps", "a dog barks", "rain and wind", "sunny warm day"] * 4
    y = np.array([[1, 0, 0], [1, 0, 0], [0, 1, 0], [0, 1, 1]] * 4, dtype=np.float32)
    cfg = _cfg(tmp_path, "wordllama", "train.epochs=5", "train.learning_rate=0.05", "train.batch_size=4")
    torch.manual_seed(0)
    model = build_model(cfg, "text", 3)
    result = train_multilabel(model, texts, y, texts, y, build_loss(cfg.loss, y), cfg.train, cfg.scheduler, None, False)
    losses = [h["train_loss"] for h in result.history]
    assert losses[-1] < 0.5 * losses[0], losses


def test_frozen_transformer_backbone_keeps_its_weights(tmp_path, tiny_bert_dir):
    import torch

    from simlab.models.multilabel import build_model
    from simlab.training.multilabel import train_multilabel
    from simlab.training.multilabel_losses import build_loss

    texts = ["boundary layer flow", "heat transfer", "sourdough bread", "bicycle tyre"]
    y = np.array([[1, 0], [1, 0], [0, 1], [0, 1]], dtype=np.float32)
    cfg = _cfg(tmp_path, tiny_bert_dir, "model.freeze=true", "model.head=mlp", "model.hidden=8", "train.epochs=2")
    model = build_model(cfg, "text", 2)
    before = {k: v.clone() for k, v in model.encoder.state_dict().items()}
    head_before = [p.clone() for p in model.head.parameters()]
    train_multilabel(model, texts, y, texts, y, build_loss(cfg.loss, y), cfg.train, cfg.scheduler, None, False)
    assert all(torch.equal(before[k], v) for k, v in model.encoder.state_dict().items())
    assert any(not torch.equal(a, b) for a, b in zip(head_before, model.head.parameters()))
    total, trainable = model.n_parameters()
    assert trainable == sum(p.numel() for p in model.head.parameters()) < total


def test_a_frozen_text_encoder_encodes_each_text_once(tmp_path, tiny_bert_dir):
    """The cached features equal the encoder's own (the naive path), and training runs the encoder only for
    texts it has not seen: every epoch of the head reads the same features."""
    import torch

    from simlab.models.multilabel import build_model
    from simlab.training.multilabel import predict_logits, train_multilabel
    from simlab.training.multilabel_losses import build_loss

    texts = ["boundary layer flow", "heat transfer", "sourdough bread", "bicycle tyre"]
    y = np.array([[1, 0], [1, 0], [0, 1], [0, 1]], dtype=np.float32)
    cfg = _cfg(tmp_path, tiny_bert_dir, "model.freeze=true", "train.epochs=3", "train.batch_size=2")
    model = build_model(cfg, "text", 2)
    calls = []
    encode = model.frozen._encode
    model.frozen._encode = lambda batch: calls.append(list(batch)) or encode(batch)
    train_multilabel(model, texts, y, texts, y, build_loss(cfg.loss, y), cfg.train, cfg.scheduler, None, False)
    assert sorted(t for c in calls for t in c) == sorted(texts)  # each text once, over 3 epochs and val
    with torch.no_grad():
        model.eval()
        assert torch.allclose(model.features(texts[::-1]), model._encode(texts[::-1]), atol=1e-6)
        predict_logits(model, ["a new text", texts[0]])
    assert calls[-1] == ["a new text"]


def test_wrong_backbone_for_the_data_is_a_config_error(tmp_path):
    from simlab.errors import ConfigError
    from simlab.models.multilabel import build_model

    with pytest.raises(ConfigError, match="is not an image backbone, and the data are images; choose one of: resnet1"):
        build_model(_cfg(tmp_path, "wordllama"), "image", 2)
    with pytest.raises(ConfigError, match="'resnet18' is an image backbone, but the data are texts"):
        build_model(_cfg(tmp_path, "resnet18"), "text", 2)


def test_run_sweep_baseline_deltas_compare_and_report(tmp_path, tiny_resnet_dir):
    import torch

    from simlab.experiments.compare import compare, load_systems
    from simlab.experiments.html_report import build_report
    from simlab.experiments.runner import run_experiment
    from simlab.experiments.sweep import run_sweep
    from simlab.models.multilabel import load_multilabel_model
    from simlab.training.multilabel import predict_logits

    data = _images(tmp_path / "d")
    base = tmp_path / "base"
    summary = run_experiment(_cfg(data, tiny_resnet_dir, "train.epochs=2"), base)
    for name in ("config.yaml", "meta.json", "metrics.json", "perquery.tsv", "history.jsonl", "curves.png"):
        assert (base / name).is_file(), name
    metrics, chosen = read_metrics(base / "metrics.json")
    assert set(metrics) == {"prior", "trained"} and chosen["system"] in metrics
    per_label = json.loads((base / "per_label.json").read_text())
    assert set(per_label["trained"]) == {"bright", "left"}
    cost = json.loads((base / "cost.json").read_text())
    assert cost["parameters"] > cost["trainable_parameters"] - 1 > 0 and cost["seconds_per_epoch"] > 0
    assert "## Cost" in (base / "report.md").read_text()
    # the saved model reloads and scores like the run's model; its thresholds are the run's (val) thresholds
    from simlab.data.multilabel import load_images, make_splits, read_items

    cfg = summary.config
    splits = make_splits(read_items(cfg.data), cfg.data)
    model, meta = load_multilabel_model(base / "model")
    scores = torch.sigmoid(predict_logits(model, load_images(splits.test.inputs, 8))).numpy()
    thr = json.loads((base / "thresholds.json").read_text())["trained"]
    assert meta["thresholds"] == pytest.approx([thr[lab] for lab in meta["labels"]])
    from simlab.evaluation.multilabel import multilabel_metrics

    again = multilabel_metrics(splits.test.targets(meta["labels"]) >= 0.5, scores, np.array(meta["thresholds"]))
    assert again["ap"] == pytest.approx(metrics["trained"]["ap"], abs=1e-6)

    points = load_sweep(
        None,
        [
            "task=multilabel",
            f"data.path={data}",
            f"model.backbone={tiny_resnet_dir}",
            "data.image_size=8",
            "data.val_ratio=0.25",
            "data.test_ratio=0.25",
            "train.batch_size=8",
            "train.epochs=2",
            "tracking.mlflow=false",
            f"baseline={base}",
            "scheduler.gamma=[0.8,0.9]",
        ],
    )
    sweep = tmp_path / "sweep"
    run_sweep(points, sweep)
    report_md = (sweep / "gamma=0.8" / "report.md").read_text()
    test_f1 = json.loads((sweep / "gamma=0.8" / "metrics.json").read_text())["trained"]["f1_micro"]
    delta = test_f1 - metrics["trained"]["f1_micro"]
    assert f"f1_micro: {test_f1:.4f} ({delta:+.4f})" in report_md
    systems = load_systems([sweep], metrics=["sample_f1"])
    assert set(systems) == {f"{r}/{s}" for r in ("gamma=0.8", "gamma=0.9") for s in ("prior", "trained")}
    result = compare(systems, baseline="gamma=0.8/prior", metrics=["sample_f1"])
    assert result.result("gamma=0.8/trained", "sample_f1").n_queries == len(splits.test)
    report = build_report(sweep)
    assert report.task == "multilabel" and "ap" in report.columns
    assert {f.name for f in report.figures} >= {"learning_curves", "per_label", "metric_vs_scheduler_gamma"}
    assert report.comparison.metrics[0] == "f1" and "sample_f1" in report.comparison.metrics  # every shared metric
    page = report.to_html()
    assert "Per-label F1 and AP" in page
    single = build_report(base)
    assert single.comparison.baseline == "prior"
    # compare computes micro F1 from the per-item tp/fp/fn rows: the run's own test micro F1
    micro = compare(load_systems([base]), baseline="prior", metrics=["f1"])
    assert micro.result("trained", "f1").mean == pytest.approx(metrics["trained"]["f1_micro"], abs=1e-9)
    assert micro.result("trained", "f1").baseline_mean == pytest.approx(metrics["prior"]["f1_micro"], abs=1e-9)


def test_example_configs_validate_and_a_bad_loss_names_the_choices():
    from pathlib import Path

    from simlab.errors import ConfigError

    examples = Path(__file__).resolve().parents[1] / "examples"
    images = load_config(examples / "multilabel-images.yaml")
    assert images.task == "multilabel" and images.model.backbone == "resnet18"
    assert load_config(examples / "multilabel-text.yaml").model.backbone == "wordllama"
    with pytest.raises(ConfigError, match=r"loss.name: Input should be 'bce', 'weighted_bce', 'focal' or 'soft_bce'"):
        load_config(examples / "multilabel-images.yaml", ["loss.name=dice"])
    with pytest.raises(ConfigError, match=r"scheduler.gamma: Input should be less than or equal to 1"):
        load_config(examples / "multilabel-images.yaml", ["scheduler.gamma=1.5"])


@pytest.mark.slow
def test_text_example_runs_offline(tmp_path):
    from pathlib import Path

    from simlab.experiments.runner import run_experiment

    example = Path(__file__).resolve().parents[1] / "examples" / "multilabel-text.yaml"
    cfg = load_config(example, ["train.epochs=2", "train.max_steps=3", "tracking.mlflow=false"])
    data = Path(__file__).resolve().parents[1] / cfg.data.path
    cfg = cfg.model_copy(update={"data": cfg.data.model_copy(update={"path": str(data)})})
    summary = run_experiment(cfg, tmp_path / "run")
    assert summary.metrics["trained"]["ap"] > summary.metrics["prior"]["ap"]
    assert "TEST:\n    f1_micro: " in (tmp_path / "run" / "report.md").read_text()


def test_digits_converter_writes_pngs_and_labels(tmp_path):
    from typer.testing import CliRunner

    from simlab.cli import app

    result = CliRunner().invoke(app, ["data", "convert", "digits", "--out", str(tmp_path / "digits")])
    assert result.exit_code == 0, result.output
    lines = (tmp_path / "digits" / "labels.csv").read_text().splitlines()
    assert lines[0] == "id,image,digit,labels" and len(lines) == 1798
    assert lines[9] == "d0008,images/0008.png,8,even|ge5|loop"
    assert len(list((tmp_path / "digits" / "images").glob("*.png"))) == 1797
    from PIL import Image

    with Image.open(tmp_path / "digits" / "images" / "0008.png") as im:
        assert im.size == (8, 8)


def test_pretrained_resnet_offline_fails_fast_with_the_fix(monkeypatch):
    from simlab.errors import ModelLoadError
    from simlab.models.images import IMAGE_BACKBONES, build_image_backbone

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelLoadError, match="needs microsoft/resnet-50 from the Hugging Face hub, which is unreach"):
        build_image_backbone("resnet50", pretrained=True)
    with pytest.raises(ModelLoadError, match="choose one of: resnet152, resnet18, resnet50"):
        build_image_backbone("vgg16")
    assert [IMAGE_BACKBONES[n].depths for n in ("resnet18", "resnet50", "resnet152")] == [
        (2, 2, 2, 2),
        (3, 4, 6, 3),
        (3, 8, 36, 3),
    ]


def test_tfidf_reference_scores_are_each_labels_svm_margin_and_separate_the_labels():
    from scipy.special import expit
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.svm import LinearSVC

    from simlab.models.tfidf import tfidf_svm_scores

    fruit = ["apple banana pear", "banana mango", "pear apple plum"]
    train = fruit + ["car truck van", "truck bus", "van car bus"]
    y = np.array([[1, 0, 1]] * 3 + [[0, 1, 1]] * 3, dtype=np.float32)  # label 2 is on for every text
    test = ["mango apple", "bus truck"]
    scores = tfidf_svm_scores(train, y, {"test": test})["test"]
    assert scores[0, 0] > 0.5 > scores[1, 0] and scores[1, 1] > 0.5 > scores[0, 1]
    assert (scores[:, 2] == 1.0).all()  # a label always on in train has no margin: it is always predicted
    # the naive path: one vectoriser and one SVM per label, by hand (equal to liblinear's stopping tolerance)
    vec = TfidfVectorizer(sublinear_tf=True).fit(train)
    for j in (0, 1):
        svm = LinearSVC(C=1.0, class_weight="balanced", dual=True).fit(vec.transform(train), y[:, j].astype(int))
        np.testing.assert_allclose(scores[:, j], expit(2 * svm.decision_function(vec.transform(test))), atol=1e-4)
