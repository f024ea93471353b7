"""Bad input to ``sandbox train`` gets one ``error:`` line (exit 2) before any training step."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.train.train_fixtures import export, make_run

Cli = Callable[..., subprocess.CompletedProcess[str]]
ROOT = Path(__file__).resolve().parents[2]


def _one_error_line(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 2, done.stderr[-2000:]
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    return lines[0]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_run(tmp_path_factory.mktemp("run"), n=2)


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        ([{"text": "hello"}], "sandbox train takes sft rows (messages) or dpo rows"),
        ([{"messages": "hello"}], "row 1, messages: a conversation is a non-empty list"),
        ([{"messages": [{"role": "robot", "content": "x"}]}], "a message has a role in"),
        ([{"messages": [{"role": "user", "content": "hi"}]}], "no assistant message to train on"),
        (
            [{"prompt": [{"role": "user", "content": "q"}], "chosen": [], "rejected": []}],
            "chosen: a conversation",
        ),
    ],
)
def test_rows_of_the_wrong_shape(
    sandbox_cli: Cli, tmp_path: Path, rows: list[dict[str, object]], expected: str
) -> None:
    data = tmp_path / "rows.jsonl"
    data.write_text("".join(json.dumps(row) + "\n" for row in rows))
    line = _one_error_line(sandbox_cli("train", str(data), "-o", str(tmp_path / "out")))
    assert expected in line and str(data) in line


def test_a_grpo_export_is_pointed_to_grpotrainer(sandbox_cli: Cli, run: Path, tmp_path: Path) -> None:
    groups = export(run, tmp_path / "grpo", "grpo")
    assert "GRPOTrainer" in _one_error_line(sandbox_cli("train", str(groups), "-o", str(tmp_path / "out")))


def test_other_bad_requests(sandbox_cli: Cli, run: Path, tmp_path: Path) -> None:
    sft = export(run, tmp_path / "sft", "sft")
    cases = [
        (["train", str(tmp_path / "missing"), "-o", str(tmp_path / "a")], "no run folder, export folder"),
        (["train", str(sft), "-o", str(tmp_path / "b"), "--method", "dpo"], "holds sft rows, not dpo"),
        (
            ["train", str(sft), "-o", str(tmp_path / "c"), "--min-reward", "1"],
            "an export is already filtered",
        ),
        (
            ["train", str(run), "-o", str(tmp_path / "d"), "--min-reward", "99"],
            "no sft rows from its 4 traces",
        ),
        (["train", str(sft), "-o", str(tmp_path / "e"), "--merge", "q4_1"], "--merge must be f16 or q8_0"),
        (["train", str(sft), "-o", str(tmp_path / "f"), "--model", str(sft / "train.jsonl")], "not GGUF"),
    ]
    for args, expected in cases:
        assert expected in _one_error_line(sandbox_cli(*args)), args
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "config.json").write_text("{}")
    line = _one_error_line(sandbox_cli("train", str(sft), "-o", str(tmp_path / "used")))
    assert "--overwrite" in line and (tmp_path / "used" / "config.json").read_text() == "{}"


def test_without_the_train_extra_it_says_what_to_install(tmp_path: Path, run: Path) -> None:
    blocked = tmp_path / "no-trl" / "trl"
    blocked.mkdir(parents=True)
    (blocked / "__init__.py").write_text("raise ImportError(\"No module named 'trl'\")\n")
    env = {**os.environ, "PYTHONPATH": str(blocked.parent), "PYTHONWARNINGS": "ignore"}
    done = subprocess.run(
        [sys.executable, "-m", "sandbox", "train", str(run), "-o", str(tmp_path / "out")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    line = _one_error_line(done)
    assert "trl is missing" in line and "pip install 'agent-sandbox[train]'" in line
    assert not (tmp_path / "out").exists()  # nothing was written
