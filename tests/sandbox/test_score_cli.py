"""``sandbox score``: re-scoring a real run's traces, through the command line as a user runs it."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from rewards._judge import PROMPT_VERSION
from sandbox.records import read_traces

Cli = Callable[..., subprocess.CompletedProcess[str]]
RULE_REWARDS = "outcome,tool_syntax,cot,process"


@pytest.fixture(scope="module")
def run_file(sandbox_cli: Cli, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One short real episode of the seed suite on the embedded model, scored by ``sandbox run``."""
    out = tmp_path_factory.mktemp("run") / "traces.jsonl"
    done = sandbox_cli(
        "run", "--tasks", "seed", "--servers", "servers/mcp.json", "--out", str(out),
        "--task", "no-tool-two-plus-two", "--max-steps", "2", "--max-tokens", "128",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return out


def _one_line_error(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 2
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    return lines[0]


def test_rescoring_reproduces_the_run_and_is_deterministic(
    sandbox_cli: Cli, run_file: Path, tmp_path: Path
) -> None:
    first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    for out in (first, second):
        done = sandbox_cli("score", str(run_file), "--rewards", RULE_REWARDS, "-o", str(out))
        assert done.returncode == 0, done.stderr
        assert "re-scored 1 trace" in done.stdout
    assert first.read_bytes() == second.read_bytes()
    (original,), (rescored,) = read_traces(run_file), read_traces(first)
    for name in RULE_REWARDS.split(","):
        assert rescored.rewards[name] == original.rewards[name]
    assert rescored.model_dump(exclude={"rewards"}) == original.model_dump(exclude={"rewards"})


def test_rewards_not_named_stay_as_they_were(sandbox_cli: Cli, run_file: Path, tmp_path: Path) -> None:
    (original,) = read_traces(run_file)
    stale = original.model_copy(
        update={"rewards": {**original.rewards, "outcome": original.rewards["outcome"].model_copy(
            update={"value": 0.5, "version": "0-stale"})}}
    )  # fmt: skip
    source = tmp_path / "stale.jsonl"
    source.write_text(stale.model_dump_json() + "\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    assert sandbox_cli("score", str(source), "--rewards", "tool_syntax", "-o", str(out)).returncode == 0
    (kept,) = read_traces(out)
    assert kept.rewards["outcome"].version == "0-stale"  # not re-scored: kept with its version
    assert (
        sandbox_cli("score", str(source), "--rewards", "outcome", "-o", str(out), "--overwrite").returncode
        == 0
    )
    (fresh,) = read_traces(out)
    assert fresh.rewards["outcome"] == original.rewards["outcome"]


def test_an_unknown_reward_is_one_line(sandbox_cli: Cli, run_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    line = _one_line_error(sandbox_cli("score", str(run_file), "--rewards", "outcome,nope", "-o", str(out)))
    assert "unknown reward" in line and "nope" in line
    assert not out.exists()


def test_a_bad_line_is_named_and_nothing_is_written(sandbox_cli: Cli, run_file: Path, tmp_path: Path) -> None:
    source = tmp_path / "bad.jsonl"
    source.write_text(run_file.read_text(encoding="utf-8") + '{"id": "half a trace"}\n', encoding="utf-8")
    out = tmp_path / "out.jsonl"
    line = _one_line_error(sandbox_cli("score", str(source), "--rewards", "outcome", "-o", str(out)))
    assert f"{source}:2:" in line
    assert not out.exists()
    assert list(tmp_path.iterdir()) == [source]  # no partial file left behind


def test_the_output_is_never_the_input_nor_replaced_silently(
    sandbox_cli: Cli, run_file: Path, tmp_path: Path
) -> None:
    assert "input file" in _one_line_error(sandbox_cli("score", str(run_file), "-o", str(run_file)))
    out = tmp_path / "out.jsonl"
    out.write_text("keep me\n", encoding="utf-8")
    assert "--overwrite" in _one_line_error(
        sandbox_cli("score", str(run_file), "--rewards", "outcome", "-o", str(out))
    )
    assert out.read_text(encoding="utf-8") == "keep me\n"
    done = sandbox_cli("score", str(run_file), "--rewards", "outcome", "-o", str(out), "--overwrite")
    assert done.returncode == 0, done.stderr
    assert len(read_traces(out)) == 1


def test_a_judge_model_adds_its_rewards(sandbox_cli: Cli, run_file: Path, tmp_path: Path) -> None:
    from sandbox.models import default_model_path

    out = tmp_path / "judged.jsonl"
    done = sandbox_cli(
        "score",
        str(run_file),
        "--rewards",
        "cot_judge,process_judge",
        "--judge",
        str(default_model_path()),
        "-o",
        str(out),
    )
    assert done.returncode == 0, done.stderr
    (trace,) = read_traces(out)
    for name in ("cot_judge", "process_judge"):
        reward = trace.rewards[name]
        assert PROMPT_VERSION in reward.version
        assert reward.value is not None or reward.reason
    refused = sandbox_cli("score", str(run_file), "--rewards", "cot_judge", "-o", str(tmp_path / "x.jsonl"))
    assert refused.returncode == 2 and "--judge" in _one_line_error(refused)
