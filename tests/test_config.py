"""The experiment config: validation messages, overrides, the resolved dump."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from simlab.errors import ConfigError
from simlab.tasks import load_config
from simlab.tasks.retrieval.config import RetrievalConfig

REPO = Path(__file__).resolve().parents[1]


def write(tmp_path: Path, text: str) -> Path:
    """`text` as exp.yaml, with a `data.path` unless it gives one (the one field without a default)."""
    path = tmp_path / "exp.yaml"
    path.write_text(text if "data:" in text else f"data:\n  path: examples/demo\n{text}")
    return path


def test_example_config_is_valid():
    cfg = load_config(REPO / "examples" / "dense.yaml")
    assert cfg.model.name == "wordllama"
    assert cfg.train.hard_negatives.source == "bm25"


def test_unknown_field_names_file_dotted_field_and_valid_fields(tmp_path):
    path = write(tmp_path, "train:\n  epochz: 3\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    msg = str(err.value)
    assert str(path) in msg and "train.epochz" in msg and "unknown field" in msg
    assert "epochs" in msg and "batch_size" in msg  # the valid fields are listed


def test_bad_choice_lists_allowed_values(tmp_path):
    with pytest.raises(ConfigError, match=r"model\.towers.*'shared' or 'separate'.*got 'triple'"):
        load_config(write(tmp_path, "model:\n  towers: triple\n"))


def test_wrong_type(tmp_path):
    with pytest.raises(ConfigError, match=r"train\.epochs: .*integer.*got 'many'"):
        load_config(write(tmp_path, "train:\n  epochs: many\n"))


def test_out_of_range_value(tmp_path):
    with pytest.raises(ConfigError, match=r"train\.batch_size: .*greater than or equal to 2"):
        load_config(write(tmp_path, "train:\n  batch_size: 1\n"))


def test_bad_metric_name(tmp_path):
    with pytest.raises(ConfigError, match=r"eval\.metrics.*ndcg@"):
        load_config(write(tmp_path, "eval:\n  metrics: [ndcg@10, bleu]\n"))


def test_a_config_without_data_path_is_refused_not_run_on_the_demo(tmp_path):
    path = tmp_path / "exp.yaml"
    path.write_text("name: mine\n")
    with pytest.raises(ConfigError, match=r"exp\.yaml: data: missing; give it in the config or with --set data\.path="):
        load_config(path)


def test_a_key_given_twice_is_refused_naming_both_lines(tmp_path):
    path = write(tmp_path, "train:\n  epochs: 1\n  epochs: 2\n")
    with pytest.raises(
        ConfigError, match=r"exp\.yaml:5: not valid YAML \(duplicate key 'epochs' \(first on line 4\)\)"
    ):
        load_config(path)


def test_a_config_that_is_not_utf8_is_refused_naming_the_line(tmp_path):
    path = tmp_path / "exp.yaml"
    path.write_bytes(b"data:\n  path: x\nname: caf\xe9\n")
    with pytest.raises(ConfigError, match=r"exp\.yaml:3: not UTF-8 text \(byte 25\); save the config as UTF-8"):
        load_config(path)


def test_invalid_yaml_names_line(tmp_path):
    with pytest.raises(ConfigError, match=r"exp\.yaml:4: not valid YAML"):
        load_config(write(tmp_path, "data:\n  path: x\ntrain:\n\tepochs: 3\n"))


def test_missing_file():
    with pytest.raises(ConfigError, match="no such config file"):
        load_config("does/not/exist.yaml")


def test_set_overrides_any_field(tmp_path):
    cfg = load_config(
        write(tmp_path, "train:\n  epochs: 1\n"),
        ["train.epochs=2", "model.name=wordllama", "index.hnsw.ef_search=128", "eval.metrics=[ndcg@10]"],
    )
    assert cfg.train.epochs == 2 and cfg.index.hnsw.ef_search == 128 and cfg.eval.metrics == ["ndcg@10"]


def test_set_unknown_key_and_malformed(tmp_path):
    with pytest.raises(ConfigError, match=r"<defaults>: train\.nope: unknown field"):
        load_config(None, ["train.nope=1"])
    with pytest.raises(ConfigError, match="expected dotted.key=value"):
        load_config(None, ["train.epochs"])


def test_resolved_dump_round_trips():
    cfg = load_config(None, ["data.path=examples/demo", "train.epochs=4"])
    again = RetrievalConfig.model_validate(yaml.safe_load(cfg.to_yaml()))
    assert again == cfg


def test_cli_config_error_exit_code_2_no_traceback(tmp_path):
    path = write(tmp_path, "model:\n  towers: triple\n")
    proc = subprocess.run(
        [sys.executable, "-m", "simlab", "run", str(path), "--out", str(tmp_path / "run")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "model.towers" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "run").exists()


def test_help_does_not_import_torch():
    code = (
        "import sys; from simlab.cli import app; assert 'torch' not in sys.modules; "
        "assert 'transformers' not in sys.modules; assert 'sentence_transformers' not in sys.modules; "
        "assert 'ray' not in sys.modules; assert 'faiss' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    proc = subprocess.run([sys.executable, "-m", "simlab", "--help"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "run" in proc.stdout
