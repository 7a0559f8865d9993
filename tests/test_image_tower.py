"""The pair matcher's image field: a tiny randomly initialised ResNet tower on generated images."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch

from simlab.errors import ConfigError, DataError
from simlab.tasks import load_config

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
COLORS = [(220, 30, 30), (30, 200, 40), (40, 60, 230), (240, 200, 20), (160, 40, 200), (20, 200, 200)]


@pytest.fixture(scope="module")
def tiny_resnet_dir(tmp_path_factory) -> Path:
    """A 2-stage ResNet with 8/16 channels, saved like a hub checkpoint."""
    from transformers import ResNetConfig, ResNetModel

    folder = tmp_path_factory.mktemp("resnet") / "tiny-resnet"
    torch.manual_seed(0)
    config = ResNetConfig(embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1], layer_type="basic")
    ResNetModel(config).save_pretrained(folder)
    return folder


def write_image_records(folder: Path, n_groups: int = 12) -> Path:
    """Two records per group (the same colour, a little noise, titles sharing a word) with a PNG each."""
    from PIL import Image

    (folder / "img").mkdir(parents=True)
    rng = np.random.default_rng(0)
    rows = []
    for g in range(n_groups):
        for side in range(2):
            pixels = np.clip(np.array(COLORS[g % len(COLORS)]) + rng.normal(0, 20, (16, 16, 3)), 0, 255)
            Image.fromarray(pixels.astype(np.uint8)).save(folder / "img" / f"{g}-{side}.png")
            title = f"item{g} {'red blue green'.split()[side % 3]} thing"
            rows.append([f"r{g}-{side}", f"g{g}", title, f"img/{g}-{side}.png"])
    with open(folder / "records.csv", "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([["id", "group", "title", "image"], *rows])
    return folder / "records.csv"


def image_config(records: Path, backbone: Path, *extra: str):
    return load_config(
        EXAMPLES / "matching.yaml",
        [
            f"data.path={records}",
            "data.fields=[title]",
            "data.image_field=image",
            "data.val_ratio=0.25",
            "data.test_ratio=0.25",
            "model.fields_encoder=shared",
            f"model.image.backbone={backbone}",
            "model.image.image_size=16",
            "cross.model=null",
            "train.batch_size=8",
            "tracking.mlflow=false",
            *extra,
        ],
    )


def test_image_paths_resolved_and_a_missing_image_names_file_and_line(tmp_path):
    from simlab.data.matching import read_records

    path = write_image_records(tmp_path)
    records = read_records(path, group_field="group", image_field="image")
    assert list(records.fields) == ["title", "image"]  # the image column last
    assert records.fields["image"][0] == str((tmp_path / "img" / "0-0.png").resolve())
    lines = path.read_text().splitlines()
    lines[3] = lines[3].replace("img/1-0.png", "img/missing.png")
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"records.csv:4: image 'img/missing.png': no such image file"):
        read_records(path, group_field="group", image_field="image")


def test_image_tower_saves_and_loads_with_identical_embeddings(tmp_path, tiny_resnet_dir):
    from simlab.models.image_tower import ImageTower

    write_image_records(tmp_path)
    tower = ImageTower(str(tiny_resnet_dir), dim=12, image_size=16).eval()
    paths = [str(tmp_path / "img" / "0-0.png"), ""]
    with torch.no_grad():
        before = tower(tower.preprocess(paths))["sentence_embedding"]
    assert before.shape == (2, 12)
    tower.save(str(tmp_path / "tower"))
    loaded = ImageTower.load(str(tmp_path / "tower")).eval()
    with torch.no_grad():
        after = loaded(loaded.preprocess(paths))["sentence_embedding"]
    torch.testing.assert_close(before, after)


def test_pairs_run_with_an_image_field_trains_the_tower(tmp_path, tiny_resnet_dir):
    from sentence_transformers import SentenceTransformer

    from simlab.experiments.runner import run_experiment
    from simlab.tasks.pairs.run import pair_model

    records = write_image_records(tmp_path)
    cfg = image_config(records, tiny_resnet_dir, "train.epochs=2")
    untrained = pair_model(cfg, 2)[0].encoders[-1].projection.weight.detach().clone()
    summary = run_experiment(cfg, tmp_path / "run")
    assert {"overlap", "zeroshot", "trained"} <= set(summary.metrics)
    model = SentenceTransformer(str(tmp_path / "run" / "model"), device="cpu", trust_remote_code=True)
    fusion = model[0]
    assert fusion.encoder_types == ["StaticEmbedding", "ImageTower"] and fusion.field_encoders == [0, 1]
    trained = fusion.encoders[-1].projection.weight.detach()
    assert not torch.equal(trained, untrained), "the image tower's projection was trained"
    text = f"item0 red thing\x1f{(tmp_path / 'img' / '0-0.png').resolve()}"
    emb = model.encode([text, text.split("\x1f")[0] + "\x1f"])
    assert emb.shape == (2, 2 * 256) and not np.allclose(emb[0], emb[1])  # the image changes the embedding

    from simlab.experiments.match import match_tables

    out = tmp_path / "matches.csv"
    report = match_tables(tmp_path / "run", records, records, out, k=3, index="flat", progress=False)
    rows = (tmp_path / "matches.csv").read_text().splitlines()
    assert report.n_left == 24 and rows[0] == "left_id,right_id,score" and len(rows) > 1


def test_image_field_needs_an_encoder_per_field(tmp_path, tiny_resnet_dir):
    from simlab.experiments.runner import run_experiment

    records = write_image_records(tmp_path)
    with pytest.raises(ConfigError, match="data.image_field needs an encoder per field"):
        run_experiment(image_config(records, tiny_resnet_dir, "model.fields_encoder=joined"), tmp_path / "run")
    assert not (tmp_path / "run").exists()
