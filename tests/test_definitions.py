"""Workload B: converters, layer/target pooling, the head, synthetic negatives, the PCA filter, curves."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from simlab.errors import ConfigError, DataError
from simlab.tasks import load_config

EXAMPLE = Path(__file__).parents[1] / "examples" / "definitions.yaml"


# ------------------------------------------------------------------ a toy definitions dataset

TOPICS = {
    "animal": (
        [
            f"the {a} {v} in the {p}"
            for a in ("cat", "dog", "horse", "cow")
            for v, p in (("chased a mouse", "garden"), ("slept", "barn"), ("ate grass", "field"))
        ],
        ["a domesticated animal kept on a farm or as a pet", "a mammal with fur that hunts small animals"],
    ),
    "money": (
        [
            f"the {a} {v} on the {p}"
            for a in ("bank", "price", "loan", "payment")
            for v, p in (
                ("rose in cash", "market"),
                ("was paid in dollars", "account"),
                ("cost money", "stock exchange"),
            )
        ],
        ["a financial institution that lends money", "a payment of money for goods or services"],
    ),
    "weather": (
        [
            f"the {a} {v} over the {p}"
            for a in ("rain", "snow", "wind", "storm")
            for v, p in (("fell heavily", "coast"), ("blew cold", "valley"), ("came with clouds", "mountains"))
        ],
        ["water falling from clouds in drops", "the state of the atmosphere: wind, rain and temperature"],
    ),
}


def write_toy(folder: Path) -> Path:
    """Contexts x definitions of three topics; label 1 iff the topics agree. Split by context."""
    folder.mkdir(parents=True, exist_ok=True)
    contexts, definitions, pairs = [], [], {"train": [], "val": [], "test": []}
    for topic, (ctxs, defs) in TOPICS.items():
        for c in ctxs:
            word = c.split()[1]
            contexts.append((f"c{len(contexts)}", c, word, 4, 4 + len(word), topic))
        for d in defs:
            definitions.append((f"d{len(definitions)}", d, topic, ""))
    for k, (cid, _, _, _, _, ctopic) in enumerate(contexts):
        split = ["train", "train", "train", "val", "test"][k % 5]
        for did, _, dtopic, _ in definitions:
            pairs[split].append((cid, did, int(ctopic == dtopic)))
    with open(folder / "tableA.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "text", "target", "char_start", "char_end"])
        w.writerows(c[:5] for c in contexts)
    with open(folder / "tableB.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "text", "target", "hypernyms"])
        w.writerows(definitions)
    (folder / "pairs").mkdir(exist_ok=True)
    for split, rows in pairs.items():
        with open(folder / "pairs" / f"{split}.csv", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["ltable_id", "rtable_id", "label"])
            w.writerows(rows)
    return folder


def head_overrides(folder: Path, *extra: str) -> list[str]:
    """The example on `folder`, with the static encoder and an MLP head: quick to train on the toy pairs."""
    return [
        f"data.path={folder}",
        "model.name=wordllama",
        "data.senses=null",
        "model.pooling_scope=window",
        "head.widths=[512, 128]",
        "head.features=[u, v, absdiff, product]",
        "train.epochs=6",
        "train.batch_size=8",
        "train.learning_rate=0.01",
        "tracking.mlflow=false",
        *extra,
    ]


@pytest.fixture(scope="module")
def head_run(tmp_path_factory):
    from simlab.experiments.runner import run_experiment

    tmp = tmp_path_factory.mktemp("defs")
    cfg = load_config(EXAMPLE, head_overrides(write_toy(tmp / "toy"), "head.widths=[32, 16]"))
    return run_experiment(cfg, tmp / "run")


# ------------------------------------------------------------------ converters


def write_wic_tsv(root: Path) -> None:
    for folder, prefix, rows in (
        (
            "Training",
            "train",
            [
                (
                    "spring",
                    3,
                    "I spent my spring holidays in Morocco .",
                    "the season of growth",
                    "season\ttime_of_year",
                    "T",
                ),
                ("bank", 1, "the bank closed", "sloping land", "slope", "F"),
            ],
        ),
        ("Development", "dev", [("rains", 1, "it rains today", "precipitate as rain", "fall", "T")]),
    ):
        d = root / folder
        d.mkdir(parents=True)
        (d / f"{prefix}_examples.txt").write_text("".join(f"{w}\t{i}\t{c}\n" for w, i, c, *_ in rows))
        (d / f"{prefix}_definitions.txt").write_text("".join(f"{r[3]}\n" for r in rows))
        (d / f"{prefix}_hypernyms.txt").write_text("".join(f"{r[4]}\n" for r in rows))
        (d / f"{prefix}_labels.txt").write_text("".join(f"{r[5]}\n" for r in rows))


def test_wic_tsv_converter_writes_spans_and_splits(tmp_path):
    from simlab.data.definitions import convert_wic_tsv

    write_wic_tsv(tmp_path / "src")
    data = convert_wic_tsv(tmp_path / "src", tmp_path / "out", val_ratio=0.5)
    left = data.left
    for i in range(len(left)):
        text, a, b = left.fields["text"][i], int(left.fields["char_start"][i]), int(left.fields["char_end"][i])
        assert text[a:b].lower().startswith(left.fields["target"][i][:4].lower())
    spring = left.fields["target"].index("spring")
    assert left.fields["char_start"][spring] == "11" and left.fields["char_end"][spring] == "17"
    assert "season, time of year" in data.right.fields["hypernyms"]
    assert len(data.pairs["test"]) == 1 and data.pairs["test"].labels == [1]
    assert len(data.pairs["train"]) + len(data.pairs["val"]) == 2
    with pytest.raises(DataError, match="already exists"):
        convert_wic_tsv(tmp_path / "src", tmp_path / "out")


def test_wic_tsv_converter_on_the_real_data(shared_data, tmp_path):
    from simlab.data.definitions import convert_wic_tsv

    data = convert_wic_tsv(shared_data / "wic-tsv", tmp_path / "wictsv")
    assert len(data.pairs["train"]) + len(data.pairs["val"]) == 2828 and len(data.pairs["test"]) == 389
    val_words = {data.left.fields["target"][data.left.position[i]].lower() for i in data.pairs["val"].left_ids}
    train_words = {data.left.fields["target"][data.left.position[i]].lower() for i in data.pairs["train"].left_ids}
    assert not val_words & train_words  # held out by word
    counts = data.pairs["val"].counts()
    assert abs(counts["pos"] - counts["neg"]) <= 3  # balanced like Development


def test_wic_converter_pairs_two_usages(tmp_path):
    from simlab.data.definitions import convert_wic

    for split in ("train", "dev", "test"):
        (tmp_path / "wic" / split).mkdir(parents=True)
        (tmp_path / "wic" / split / f"{split}.data.txt").write_text(
            "bank\tN\t1-4\tthe bank was closed\tthey sat on the bank\n"
        )
        (tmp_path / "wic" / split / f"{split}.gold.txt").write_text("F\n")
    data = convert_wic(tmp_path / "wic", tmp_path / "out")
    assert data.pairs["val"].labels == [0]
    assert set(data.right.fields) == {"text", "target", "char_start", "char_end"}
    r = data.right.position[data.pairs["train"].right_ids[0]]
    text = data.right.fields["text"][r]
    assert text[int(data.right.fields["char_start"][r]) : int(data.right.fields["char_end"][r])] == "bank"
    (tmp_path / "wic" / "dev" / "dev.gold.txt").write_text("F\nT\n")
    with pytest.raises(DataError, match="line-aligned"):
        convert_wic(tmp_path / "wic", tmp_path / "out2")


def test_oewn_builder_makes_positive_and_same_lemma_negative_pairs(tmp_path):
    from simlab.data.definitions import build_oewn_pairs

    yaml_dir = tmp_path / "oewn" / "src" / "yaml"
    yaml_dir.mkdir(parents=True)
    lemmas = ["run", "walk", "jump", "swim", "climb"]
    synsets = {
        f"{i:08d}-v": {
            "definition": [f"sense {i} of {lemmas[i % 5]}"],
            "example": [f"they {lemmas[i % 5]} example {i}"],
            "members": [lemmas[i % 5]],
            "partOfSpeech": "v",
        }
        for i in range(10)
    }
    synsets["00000000-v"]["example"].append({"text": "no lemma here", "source": "x"})
    import yaml

    (yaml_dir / "verb.motion.yaml").write_text(yaml.safe_dump(synsets))
    data = build_oewn_pairs(tmp_path / "oewn", tmp_path / "out", negatives=2, val_ratio=0.2, test_ratio=0.2)
    # 10 examples contain their lemma (the one without it is skipped): one positive each, and one negative
    # each (the lemma's only other sense, though 2 were allowed)
    counts = {s: p.counts() for s, p in data.pairs.items()}
    assert sum(c["pos"] for c in counts.values()) == 10 and sum(c["neg"] for c in counts.values()) == 10
    assert counts["val"] == {"pos": 2, "neg": 2}
    for split in data.pairs.values():
        for a, b, y in zip(split.left_ids, split.right_ids, split.labels):
            i = data.left.position[a]
            lemma = data.left.fields["target"][i]
            text = data.left.fields["text"][i]
            assert text[int(data.left.fields["char_start"][i]) : int(data.left.fields["char_end"][i])] == lemma
            definition = data.right.fields["text"][data.right.position[b]]
            assert definition.endswith(f"of {lemma}") and (definition == f"sense {text.split()[-1]} of {lemma}") == y


# ------------------------------------------------------------------ pooling


def test_layer_pooling_equals_the_hand_computed_sum_of_the_last_k_layers(tiny_bert_dir, tmp_path):
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Transformer
    from transformers import AutoTokenizer, BertModel

    from simlab.models.context_pooling import ContextPooling, mark_target

    text = "heat transfer in supersonic flow"
    bert = BertModel.from_pretrained(tiny_bert_dir).eval()
    tok = AutoTokenizer.from_pretrained(tiny_bert_dir)
    enc = tok([text], return_tensors="pt", return_offsets_mapping=True)
    offsets = enc.pop("offset_mapping")[0].tolist()
    with torch.no_grad():
        hidden = bert(**enc, output_hidden_states=True).hidden_states  # 3 = embeddings + 2 layers
    for k, mode in ((2, "sum"), (3, "mean"), (1, "sum")):
        stacked = torch.stack(hidden[-k:])  # (k, 1, seq, 32)
        tokens = (stacked.sum(0) if mode == "sum" else stacked.mean(0))[0]  # (seq, 32)
        expected_sentence = tokens.mean(0)  # every token of the attention mask
        target = [i for i, (a, b) in enumerate(offsets) if b > a and a < 13 and b > 5]  # "transfer" = [5, 13)
        expected_target = tokens[target].mean(0)
        for scope, marked, expected in (
            ("sentence", text, expected_sentence),
            ("target", mark_target(text, 5, 13), expected_target),
        ):
            model = SentenceTransformer(
                modules=[ContextPooling(Transformer(str(tiny_bert_dir)), layers=k, layer_mode=mode, scope=scope)],
                device="cpu",
            )
            got = model.encode([marked], convert_to_tensor=True)[0]
            assert torch.allclose(got, expected, atol=1e-5), (k, mode, scope)
    model.save(str(tmp_path / "saved"))
    again = SentenceTransformer(str(tmp_path / "saved"), device="cpu", trust_remote_code=True)
    assert isinstance(again[0], ContextPooling) and again[0].layers == 1
    np.testing.assert_allclose(again.encode([marked]), model.encode([marked]), atol=1e-6)


def test_static_window_pooling_is_the_mean_of_the_window_tokens():
    import torch

    from simlab.models import build_wordllama
    from simlab.models.context_pooling import ContextPooling, mark_target

    static = build_wordllama()[0]
    pool = ContextPooling(static, scope="window", window=1)
    text = "the old bank of the river was muddy"
    start = text.index("bank")
    feats = pool.preprocess([mark_target(text, start, start + 4)])
    got = pool(feats)["sentence_embedding"][0]
    enc = static.tokenizer.encode(text, add_special_tokens=False)
    hit = [i for i, (a, b) in enumerate(enc.offsets) if a < start + 4 and b > start]
    ids = enc.ids[max(0, hit[0] - 1) : hit[-1] + 2]
    expected = static.embedding.weight[ids].mean(0)
    assert torch.allclose(got, expected, atol=1e-6)


def test_layers_with_the_static_default_is_refused():
    with pytest.raises(ConfigError, match="static embedding"):
        load_config(EXAMPLE, ["model.name=wordllama", "model.layers=last4_sum"])
    with pytest.raises(ConfigError, match="layers"):
        load_config(EXAMPLE, ["model.layers=top4"])
    with pytest.raises(ConfigError, match="synthetic: unknown field"):  # definitions options in a pairs config
        load_config(EXAMPLE, ["task=pairs", "head=null", "synthetic.swap_share=0.5"])


# ------------------------------------------------------------------ head


def test_head_trains_on_a_separable_toy_set(head_run):
    history = head_run.history
    assert [h["epoch"] for h in history] == list(range(1, 7))
    assert history[-1]["train_loss"] < history[0]["train_loss"] * 0.8  # the loss falls
    trained = head_run.metrics["trained"]
    assert trained["val_accuracy"] >= 0.9 and trained["accuracy"] >= 0.8
    for key in ("accuracy", "precision", "recall", "f1", "ap", "threshold"):
        assert key in trained


def test_head_run_folder_and_test_threshold_frozen_from_val(head_run):
    from simlab.evaluation.pairs import best_threshold, pair_metrics
    from simlab.models.head import PairHead

    folder = head_run.folder
    for name in (
        "config.yaml",
        "metrics.json",
        "history.jsonl",
        "curves.png",
        "perquery.tsv",
        "report.md",
        "model/modules.json",
        "model/head/head.safetensors",
    ):
        assert (folder / name).exists(), name
    from sentence_transformers import SentenceTransformer

    from simlab.tasks.definitions.sets import context_pairs, to_pair_set
    from simlab.training.head import head_scores

    model = SentenceTransformer(str(folder / "model"), device="cpu", trust_remote_code=True)
    head = PairHead.load(folder / "model" / "head")
    from simlab.data.matching import read_matching

    data = read_matching(head_run.config.data.path)
    val, test = (to_pair_set(context_pairs(head_run.config, data, s), True) for s in ("val", "test"))
    thr, _ = best_threshold(head_scores(model, head, val), val.labels, "accuracy")
    m = pair_metrics(head_scores(model, head, test), test.labels, thr)
    assert head_run.metrics["trained"]["threshold"] == pytest.approx(thr, abs=1e-6)
    assert head_run.metrics["trained"]["accuracy"] == pytest.approx(m["accuracy"])


def test_cosine_head_and_trainable_encoder(tmp_path):
    from simlab.experiments.runner import run_experiment

    toy = write_toy(tmp_path / "toy")
    cfg = load_config(
        EXAMPLE,
        head_overrides(toy, "head.kind=cosine", "head.widths=[]", "head.freeze_encoder=false", "train.epochs=2"),
    )
    summary = run_experiment(cfg, tmp_path / "run")
    assert len(summary.history) == 2 and summary.metrics["trained"]["val_accuracy"] > 0.5


def test_layer_pooled_transformer_trains_end_to_end_and_reloads(tiny_bert_dir, tmp_path):
    from simlab.experiments.runner import run_experiment
    from simlab.models.context_pooling import ContextPooling
    from simlab.tasks.definitions.run import context_encoder

    toy = write_toy(tmp_path / "toy")
    over = [f"model.name={tiny_bert_dir}", "model.layers=last2_sum", "model.pooling_scope=target"]
    cfg = load_config(EXAMPLE, head_overrides(toy, *over, "head.freeze_encoder=false", "train.epochs=1"))
    before = context_encoder(cfg)[0].encoder.model.embeddings.word_embeddings.weight.detach().clone()
    summary = run_experiment(cfg, tmp_path / "run")
    again = context_encoder(load_config(EXAMPLE, [*head_overrides(toy), f"model.name={summary.folder / 'model'}"]))
    assert isinstance(again[0], ContextPooling) and (again[0].layers, again[0].scope) == (2, "target")
    after = again[0].encoder.model.embeddings.word_embeddings.weight
    assert not np.allclose(before.numpy(), after.detach().numpy())  # the encoder was trained and saved


def test_synthetic_share_list_is_a_sweep():
    from simlab.tasks import load_sweep

    points = load_sweep(EXAMPLE, ["synthetic.replace_share=[0.7,0.8,1.0]"])
    assert [cfg.synthetic.replace_share for _, cfg in points] == [0.7, 0.8, 1.0]
    with pytest.raises(ConfigError, match="cannot replace more than all"):
        load_config(EXAMPLE, ["synthetic.replace_share=0.8", "synthetic.swap_share=0.5"])
    with pytest.raises(ConfigError, match="target"):
        load_config(EXAMPLE, ["synthetic.templates=[no slot here]"])


# ------------------------------------------------------------------ synthetic negatives


def _toy_pairs():
    from simlab.data.synthetic import ContextPairs

    left, right, labels, targets, spans = [], [], [], [], []
    for i in range(10):
        text = f"the word{i} sentence number {i}"
        left.append(text)
        right.append(f"definition of word{i}")
        labels.append(1)
        targets.append(f"word{i}")
        spans.append((4, 4 + len(f"word{i}")))
    for i in range(20):
        left.append(f"another word{i % 10} context")
        right.append(f"wrong definition {i}")
        labels.append(0)
        targets.append(f"word{i % 10}")
        spans.append((8, 8 + len(f"word{i % 10}")))
    return ContextPairs(left, right, labels, [f"p{i}" for i in range(30)], targets, spans)


@pytest.mark.parametrize(("replace", "swap", "n_t", "n_s"), [(0.7, 0.2, 14, 4), (1.0, 0.0, 20, 0), (0.0, 0.5, 0, 10)])
def test_each_synthetic_rule_produces_the_configured_counts(replace, swap, n_t, n_s):
    from simlab.data.synthetic import add_synthetic

    pairs = _toy_pairs()
    out, counts = add_synthetic(pairs, replace, swap, ["from the hill {target} is seen"], seed=1)
    assert counts == {"positives": 10, "negatives_kept": 20 - n_t - n_s, "template": n_t, "swap": n_s}
    assert sum(out.labels) == 10 and len(out) == 30
    templ = [i for i, pid in enumerate(out.ids) if pid.startswith("template:")]
    swaps = [i for i, pid in enumerate(out.ids) if pid.startswith("swap:")]
    assert (len(templ), len(swaps)) == (n_t, n_s)
    for i in templ:
        a, b = out.spans[i]
        word = out.left[i][a:b]
        assert out.left[i] == f"from the hill {word} is seen" and out.labels[i] == 0
        assert out.right[i] == f"definition of {word}"  # the positive's definition, of the same word
    for i in swaps:
        a, b = out.spans[i]
        word = out.left[i][a:b]
        assert out.right[i] == f"definition of {word}"
        other = out.left[i].rsplit(" ", 1)[1]  # the context of another positive, with this word put in
        assert out.left[i] == f"the {word} sentence number {other}" and f"word{other}" != word
    assert len(set(out.ids)) == 30  # no negative replaced twice


def test_swap_uses_the_opposite_index():
    from simlab.data.synthetic import add_synthetic

    out, _ = add_synthetic(_toy_pairs(), 0.0, 0.1, [], seed=0)  # 2 swaps: positives 0 and 1, opposites 9 and 8
    swapped = [(out.left[i], out.right[i]) for i, pid in enumerate(out.ids) if pid.startswith("swap:")]
    assert swapped == [
        ("the word0 sentence number 9", "definition of word0"),
        ("the word1 sentence number 8", "definition of word1"),
    ]


def test_synthetic_run_reports_counts(tmp_path):
    from simlab.experiments.runner import run_experiment

    toy = write_toy(tmp_path / "toy")
    cfg = load_config(
        EXAMPLE, head_overrides(toy, "synthetic.replace_share=0.5", "synthetic.swap_share=0.25", "train.epochs=1")
    )
    summary = run_experiment(cfg, tmp_path / "run")
    line = next(n for n in summary.notes if n.startswith("synthetic counts: "))
    counts = json.loads(line.removeprefix("synthetic counts: "))
    n_neg = sum(1 for _ in open(toy / "pairs" / "train.csv")) - 1 - counts["positives"]
    assert counts["template"] == int(np.floor(0.5 * n_neg + 0.5)) and counts["swap"] == int(
        np.floor(0.25 * n_neg + 0.5)
    )


# ------------------------------------------------------------------ PCA filter


def _fake_encode(texts):
    rng = {t: np.random.default_rng(abs(hash(t)) % 2**32).normal(size=8) for t in texts}
    return np.stack([rng[t] for t in texts])


@pytest.mark.parametrize("units", ["percentile", "distance"])
def test_pca_filter_drops_exactly_the_pairs_beyond_the_thresholds(tmp_path, units):
    from simlab.data.matching import read_matching
    from simlab.data.pca_filter import filter_pca

    toy = write_toy(tmp_path / "toy")
    data = read_matching(toy)
    train = data.pairs["train"]
    # independent PCA-2D by SVD on the same embeddings
    lids, rids = list(dict.fromkeys(train.left_ids)), list(dict.fromkeys(train.right_ids))
    ex = _fake_encode([data.left.text(data.left.position[i], ["text", "target"]) for i in lids])
    de = _fake_encode([data.right.text(data.right.position[i], ["text", "target", "hypernyms"]) for i in rids])
    x = np.vstack([ex, de])
    mean = x.mean(0)
    _, _, vt = np.linalg.svd(x - mean, full_matrices=False)
    pe, pd = (ex - mean) @ vt[:2].T, (de - mean) @ vt[:2].T
    d = np.array(
        [np.linalg.norm(pe[lids.index(a)] - pd[rids.index(b)]) for a, b in zip(train.left_ids, train.right_ids)]
    )
    hi, lo = (60.0, 40.0) if units == "percentile" else (float(np.median(d)), float(np.median(d)))
    t1 = np.percentile(d, hi) if units == "percentile" else hi
    t0 = np.percentile(d, lo) if units == "percentile" else lo
    results = filter_pca(toy, tmp_path / "out", hi, lo, units=units, encode=_fake_encode, plot=tmp_path / "pca.png")
    np.testing.assert_allclose(results[0].distances, d, rtol=1e-6)
    labels = np.array(train.labels)
    expected_keep = [
        (a, b)
        for a, b, y, dist in zip(train.left_ids, train.right_ids, labels, d)
        if (y == 1 and dist <= t1) or (y == 0 and dist >= t0)
    ]
    out = read_matching(tmp_path / "out")
    assert list(zip(out.pairs["train"].left_ids, out.pairs["train"].right_ids)) == expected_keep
    assert 0 < len(expected_keep) < len(train)
    assert out.pairs["val"].labels == data.pairs["val"].labels  # other splits unchanged
    report = json.loads((tmp_path / "out" / "filter.json").read_text())["splits"]["train"]
    assert len(report["dropped"]) == len(train) - len(expected_keep)
    assert (tmp_path / "pca.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_pca_filter_cli_and_errors(tmp_path):
    from typer.testing import CliRunner

    from simlab.cli import app

    toy = write_toy(tmp_path / "toy")
    res = CliRunner().invoke(
        app,
        [
            "data",
            "filter-pca",
            str(toy),
            "--label1-max",
            "75",
            "--label0-min",
            "80",
            "--out",
            str(tmp_path / "f"),
            "--plot",
            str(tmp_path / "p.png"),
        ],
    )
    assert res.exit_code == 0, res.output
    assert "dropped" in res.output and (tmp_path / "f" / "pairs" / "train.csv").is_file()
    res = CliRunner().invoke(
        app, ["data", "filter-pca", str(toy), "--label1-max", "175", "--label0-min", "80", "--out", str(tmp_path / "g")]
    )
    assert res.exit_code != 0 and not (tmp_path / "g").exists()


# ------------------------------------------------------------------ learning curves


def test_curves_png_has_one_point_per_epoch(head_run, tmp_path):
    from PIL import Image

    from simlab.tasks.plots import learning_curves

    png = head_run.folder / "curves.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(png) as im:
        assert im.format == "PNG" and im.size[0] > 100
    history = [json.loads(x) for x in (head_run.folder / "history.jsonl").read_text().splitlines()]
    series = learning_curves(history, tmp_path / "c.png", "accuracy", prefix="val")
    assert set(series) == {"train loss", "val loss", "val accuracy"}
    for epochs, values in series.values():
        assert epochs == [1, 2, 3, 4, 5, 6] and len(values) == 6 and all(v is not None for v in values)


# ------------------------------------------------------------------ sense inventory


def test_sense_margin_is_the_cosine_minus_the_best_other_sense(tmp_path):
    import yaml

    from simlab.data.senses import read_oewn_senses, sense_margin

    (tmp_path / "inv").mkdir()
    synsets = {
        "1-n": {"definition": ["a financial institution"], "members": ["bank"], "hypernym": ["3-n"]},
        "2-n": {"definition": ["sloping land"], "members": ["bank", "slope"]},
        "3-n": {"definition": ["an organization"], "members": ["institution"]},
    }
    (tmp_path / "inv" / "noun.x.yaml").write_text(yaml.safe_dump(synsets))
    inventory = read_oewn_senses(tmp_path / "inv")
    assert inventory["bank"] == [("a financial institution", "institution"), ("sloping land", "")]
    contexts = ["the bank lent money", "we sat on the river bank", "a word nobody lists"]
    definitions = ["a financial institution institution", "A Financial  institution institution", "a gloss"]
    glosses = ["a financial institution", "A Financial  institution", "a gloss"]
    margins, covered = sense_margin(_fake_encode, contexts, definitions, glosses, ["bank", "Bank", "zzz"], inventory)

    def cos(a, b):
        x, y = _fake_encode([a, b])
        return float(x @ y / np.linalg.norm(x) / np.linalg.norm(y))

    assert covered == 2
    for k in range(2):  # the own sense is recognised despite case and spacing; the other is "sloping land"
        assert margins[k] == pytest.approx(cos(contexts[k], definitions[k]) - cos(contexts[k], "sloping land"))
    assert margins[2] == pytest.approx(cos(contexts[2], definitions[2]))  # not in the inventory: plain cosine


def test_wordnet_inventory_reads_wordnet_30_as_wic_tsv_writes_its_definitions():
    from simlab.data.senses import read_senses

    inventory = read_senses("wordnet", ["Spring", "take off", "qqqzz"])
    # WiC-TSV's row for "spring": gloss "the season of growth", hypernyms "season, time of year"
    assert inventory["spring"][0] == ("the season of growth", "season, time of year")
    assert (
        len(inventory["spring"]) > 5
        and ("sloping land (especially the slope beside a body of water)", "slope, incline, side")
        in read_senses("wordnet", ["bank"])["bank"]
    )
    assert inventory["take off"] and inventory["qqqzz"] == []


def test_a_missing_sense_folder_is_refused_before_any_work(tmp_path):
    from simlab.errors import DataError
    from simlab.tasks.registry import get_task

    cfg = load_config(EXAMPLE, head_overrides(write_toy(tmp_path / "toy"), f"data.senses={tmp_path / 'nowhere'}"))
    with pytest.raises(DataError, match=r"data.senses: .*nowhere: no such folder; set data.senses: wordnet"):
        get_task(cfg.task).preflight(cfg)


def test_head_run_with_a_sense_inventory_adds_the_senses_system(tmp_path):
    import yaml

    from simlab.experiments.runner import run_experiment

    toy = write_toy(tmp_path / "toy")
    (tmp_path / "inv").mkdir()
    synsets = {f"{i}-n": {"definition": [f"a sense number {i}"], "members": ["cat", "bank", "rain"]} for i in range(3)}
    (tmp_path / "inv" / "noun.x.yaml").write_text(yaml.safe_dump(synsets))
    cfg = load_config(EXAMPLE, head_overrides(toy, f"data.senses={tmp_path / 'inv'}", "train.epochs=1"))
    summary = run_experiment(cfg, tmp_path / "run")
    assert set(summary.metrics) == {"overlap", "zeroshot", "senses", "trained"}
    assert any(n.startswith("senses: ") and "had other senses" in n for n in summary.notes)


def test_accuracy_threshold_matches_a_brute_force_search():
    from simlab.evaluation.pairs import best_threshold

    rng = np.random.default_rng(3)
    for _ in range(20):
        labels = rng.integers(0, 2, 40)
        labels[0] = 1
        scores = np.round(rng.normal(size=40) + labels * 0.8, 1)  # ties included
        accs = {t: float(((scores >= t) == labels).mean()) for t in np.unique(scores)}
        best = max(accs.values())
        thr, acc = best_threshold(scores, labels, "accuracy")
        assert acc == pytest.approx(best) and accs[thr] == pytest.approx(best)
        assert thr == max(t for t, a in accs.items() if a == pytest.approx(best))  # ties: the largest
    with pytest.raises(DataError, match="choose f1 or accuracy"):
        best_threshold([0.1, 0.2], [0, 1], "auc")
