"""`simlab --version`, `simlab config show TASK` and `simlab config check FILE`."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from simlab import __version__
from simlab.cli import app
from simlab.tasks import TASKS, load_config

ROOT = Path(__file__).resolve().parents[1]


def test_version():
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.strip() == f"simlab {__version__}"


@pytest.mark.parametrize("task", ["retrieval", "sparse", "pairs", "definitions", "multilabel"])
def test_config_show_is_the_schema_with_its_defaults_and_loads_back(task, tmp_path):
    result = CliRunner().invoke(app, ["config", "show", task])
    assert result.exit_code == 0, result.output
    shown = yaml.safe_load(result.output)
    assert shown["task"] == task and shown["data"]["path"] == "REQUIRED"
    assert "#" in result.output  # the fields' descriptions are comments
    (tmp_path / "shown.yaml").write_text(result.output.replace("REQUIRED", str(tmp_path)))
    cfg = load_config(tmp_path / "shown.yaml")  # every default shown is valid, and is the schema's default
    defaults = TASKS[task].schema.model_validate({"data": {"path": str(tmp_path)}})
    assert cfg == defaults


def test_config_check(tmp_path):
    sweep = [str(ROOT / "examples" / "matching.yaml"), "--set", f"data.path={tmp_path}"]
    result = CliRunner().invoke(app, ["config", "check", *sweep, "--set", "sampling.pos_neg_ratio=[1,2,4]"])
    assert result.exit_code == 0 and "valid `task: pairs` config, a sweep of 3 runs" in result.output
    bad = CliRunner().invoke(
        app, ["config", "check", str(ROOT / "examples" / "dense.yaml"), "--set", "data.path=nowhere"]
    )
    assert bad.exception is not None and "data.path: nowhere: no such file or folder" in str(bad.exception)
    assert CliRunner().invoke(app, ["config", "show", "nope"]).exception.exit_code == 2
