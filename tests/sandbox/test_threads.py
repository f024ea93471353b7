"""``--threads N`` reaches llama.cpp on every command that loads a model; without it, every core.

Each command runs in process (typer's runner) while ``llama_cpp.Llama`` is watched: after each model
is made, the threads its llama.cpp context really uses are read back with ``llama_n_threads`` and
``llama_n_threads_batch`` (the C API), not from the Python object's settings.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import llama_cpp
import pytest
from typer.testing import CliRunner

from rewards import score_trace
from sandbox.cli import app
from sandbox.episodes import run_episode
from sandbox.hub import ToolHub
from sandbox.models import LlamaScorer, ScriptedModel, default_model_path, default_threads
from sandbox.records import Task, Trace, write_trace
from sandbox.runs import select_rewards

pytestmark = pytest.mark.model

TASK = Task(id="two", prompt="What is 2 + 2?", expected_answer="4", answer_match="number")


@pytest.fixture
def contexts(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[int, int]]]:
    """(threads, batch threads) of the llama.cpp context of every Llama made while the test runs."""
    made: list[tuple[int, int]] = []
    original = llama_cpp.Llama.__init__

    def watched(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        ctx = self._ctx.ctx
        made.append((llama_cpp.llama_n_threads(ctx), llama_cpp.llama_n_threads_batch(ctx)))

    monkeypatch.setattr(llama_cpp.Llama, "__init__", watched)
    yield made


@pytest.fixture(scope="module")
def trace_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One scored episode of a no-tool task, replayable (a scripted model answered it)."""

    async def episode() -> Trace:
        async with ToolHub.in_memory({}) as hub:
            model = ScriptedModel(["<think>\nEasy.\n</think>\n<answer>4</answer>"])
            return await run_episode(TASK, model, hub)

    trace = score_trace(anyio.run(episode), TASK, select_rewards("outcome,cot"))
    path = tmp_path_factory.mktemp("threads") / "traces.jsonl"
    with path.open("w", encoding="utf-8") as handle:
        write_trace(handle, trace)
    return path


def _invoke(*args: str) -> None:
    result = CliRunner().invoke(app, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output


def _commands(traces: Path, out: Path) -> dict[str, list[str]]:
    judge = str(default_model_path())
    return {
        "loss": ["loss", str(traces)],
        "score --judge": ["score", str(traces), "-o", str(out), "--rewards", "cot_judge", "--judge", judge],
        "replay --model --judge": [
            "replay", str(traces), "-o", str(out), "--rewards", "process_judge", "--judge", judge,
            "--model", judge, "--max-steps", "1", "--token-budget", "16",
        ],
    }  # fmt: skip


@pytest.mark.parametrize("command", ["loss", "score --judge", "replay --model --judge"])
def test_threads_reach_every_model_a_command_loads(
    command: str, trace_file: Path, tmp_path: Path, contexts: list[tuple[int, int]]
) -> None:
    args = _commands(trace_file, tmp_path / "out.jsonl")[command]
    _invoke(*args, "--threads", "1")
    expected = 2 if command.startswith("replay") else 1  # replay: the live model and the judge
    assert contexts == [(1, 1)] * expected


@pytest.mark.parametrize("command", ["loss", "score --judge"])
def test_without_threads_a_command_uses_every_core(
    command: str, trace_file: Path, tmp_path: Path, contexts: list[tuple[int, int]]
) -> None:
    _invoke(*_commands(trace_file, tmp_path / "out.jsonl")[command])
    cores = default_threads()
    assert contexts == [(cores, cores)]


def test_the_judge_of_a_run_gets_the_run_threads(tmp_path: Path, contexts: list[tuple[int, int]]) -> None:
    tasks = tmp_path / "tasks.jsonl"
    tasks.write_text(TASK.model_dump_json() + "\n", encoding="utf-8")
    servers = tmp_path / "mcp.json"
    servers.write_text('{"mcpServers": {}}', encoding="utf-8")
    _invoke(
        "run", "--tasks", str(tasks), "--servers", str(servers), "--out", str(tmp_path / "t.jsonl"),
        "--judge", str(default_model_path()), "--rewards", "cot_judge", "--threads", "1",
        "--max-steps", "1", "--max-tokens", "16",
    )  # fmt: skip
    assert contexts == [(1, 1), (1, 1)]  # the judge, then the policy model


def test_a_judge_backend_defaults_to_every_core(contexts: list[tuple[int, int]]) -> None:
    LlamaScorer(default_model_path()).close()
    LlamaScorer(default_model_path(), n_threads=1).close()
    assert contexts == [(default_threads(), default_threads()), (1, 1)]


@pytest.mark.parametrize("command", ["loss", "score", "replay", "quantize"])
def test_zero_threads_is_one_line(command: str, trace_file: Path, tmp_path: Path) -> None:
    args = {
        "loss": ["loss", str(trace_file)],
        "score": ["score", str(trace_file), "-o", str(tmp_path / "o.jsonl")],
        "replay": ["replay", str(trace_file), "-o", str(tmp_path / "o.jsonl")],
        "quantize": ["quantize", "--type", "q4_0", "-o", str(tmp_path / "q.gguf")],
    }[command]
    from sandbox.records import SandboxError

    with pytest.raises(SandboxError, match="--threads must be at least 1"):
        CliRunner().invoke(app, [*args, "--threads", "0"], catch_exceptions=False)
    assert not (tmp_path / "o.jsonl").exists() and not (tmp_path / "q.gguf").exists()
