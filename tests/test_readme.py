"""README.md runs as written: every `sh` and `python` block, in order, in a copy of the project.

The copy gets the test's own environment as its `.venv` (so `make demo` runs as written without
installing anything) and, when `../shared/data` exists beside the project, the same `../shared`.
A block preceded by `<!-- needs: shared-data -->` runs only where that data exists; a block with
any other `needs:` (the Hugging Face hub) is never run here, and the test says why. Every fence
names what it holds (`sh`, `python`, `text`), so a new command block cannot slip past the test.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
FENCE = re.compile(
    r"(?:<!--\s*needs:\s*(?P<needs>[^>]*?)\s*-->\s*\n)?^```(?P<lang>[^\n]*)\n(?P<body>.*?)^```", re.S | re.M
)
LANGS = {"sh", "python", "text"}


def readme_blocks() -> list[tuple[str, str, str, int]]:
    """(language, needs, body, line) of every fenced block of README.md, in order."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return [
        (m["lang"].strip(), (m["needs"] or "").strip(), m["body"], text[: m.start("body")].count("\n"))
        for m in FENCE.finditer(text)
    ]


BLOCKS = [(lang, needs, body, line) for lang, needs, body, line in readme_blocks() if lang != "text"]


def commands(body: str) -> list[str]:
    """The commands of a shell block: lines without their comments, continuation lines joined."""
    joined = re.sub(r"\\\n\s*", " ", body)
    return [line.split("  #")[0].strip() for line in joined.splitlines() if line.strip()]


def test_every_fence_names_its_language():
    langs = [(line, lang) for lang, _, _, line in readme_blocks()]
    assert langs and all(lang in LANGS for _, lang in langs), [x for x in langs if x[1] not in LANGS]


def test_readme_opens_with_make_demo_and_make_test():
    lang, needs, body, _ = readme_blocks()[0]
    assert lang == "sh" and not needs and commands(body) == ["make demo", "make test"]


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """A copy of the project (no runs, data or git) with this environment as its `.venv`, beside `shared`."""
    base = tmp_path_factory.mktemp("readme")
    copy = base / "project"
    top = {".git", ".venv", "runs", "data", "mlflow.db", "mlruns", ".pytest_cache", ".bench"}

    def skip(folder: str, names: list[str]) -> set[str]:  # the project's own outputs, at its root only
        return {n for n in names if n == "__pycache__" or (Path(folder) == ROOT and n in top)}

    shutil.copytree(ROOT, copy, ignore=skip)
    venv = copy / ".venv"
    venv.mkdir()
    for part in Path(sys.prefix).iterdir():  # the venv's parts, so that .venv/bin/python is this environment
        if part.name != ".installed":
            (venv / part.name).symlink_to(part)
    (venv / ".installed").touch()  # newer than the copied pyproject.toml: make does not reinstall
    if (SHARED / "data").is_dir():
        (base / "shared").symlink_to(SHARED)
    return copy


def _env(copy: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TQDM_", "PYTEST_"))}
    path = os.pathsep.join([str(copy / ".venv" / "bin"), env.get("PATH", "")])
    return env | {"PATH": path, "PYTHONPATH": str(copy), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


@pytest.mark.parametrize(("lang", "needs", "body", "line"), BLOCKS, ids=[f"README.md:{b[3]}" for b in BLOCKS])
def test_readme_block_runs_as_written(project, lang, needs, body, line):
    if needs == "shared-data" and not (project.parent / "shared" / "data").is_dir():
        pytest.skip(f"README.md:{line} needs ../shared/data, which is not beside the project here")
    if needs and needs != "shared-data":
        pytest.skip(f"README.md:{line} is not run offline: it needs {needs}")
    demo = lang == "sh" and commands(body) == ["make demo", "make test"]
    if demo:
        body = "make demo\n"  # `make test` is the suite this test runs in
        print("README.md: `make test` is not run here: it is the test suite that runs this test")
    argv = ["bash", "-e", "-o", "pipefail", "-c", body] if lang == "sh" else [sys.executable, "-c", body]
    proc = subprocess.run(argv, cwd=project, env=_env(project), capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, f"README.md:{line} failed:\n{body}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    if demo:  # `make demo` piped to a file: the epoch lines and the tables, nothing else
        from test_console import NOISE

        log = proc.stdout + proc.stderr
        assert "[dev] Epoch 3 - loss" in log and not [n for n in NOISE if n in log], [n for n in NOISE if n in log]
