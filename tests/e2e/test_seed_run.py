"""End to end: the real embedded model over the real bundled servers through stdio, via the CLI."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from sandbox.records import read_tasks, read_traces

ROOT = Path(__file__).resolve().parents[2]
SEED = ROOT / "sandbox" / "data" / "seed.jsonl"
# A spread of the stories: hourly weather, the library song, a word problem, no tool needed.
PICKED = [
    "weather-denver-outfit-tonight",
    "music-play-toxic",
    "calc-pens-word-problem",
    "no-tool-two-plus-two",
]
REWARDS = {"tool_syntax", "outcome", "cot", "process"}


# Short episodes keep the suite fast; the model and the servers are the real ones.
SHORT = ("--max-steps", "3", "--max-tokens", "256")


@pytest.fixture(scope="module")
def seed_run(
    tmp_path_factory: pytest.TempPathFactory, sandbox_cli: Callable[..., subprocess.CompletedProcess[str]]
) -> tuple[subprocess.CompletedProcess[str], Path]:
    out = tmp_path_factory.mktemp("run") / "traces.jsonl"
    picks = [arg for task in PICKED for arg in ("--task", task)]
    done = sandbox_cli(
        "run", "--tasks", "seed", "--servers", "servers/mcp.json", "--out", str(out), *SHORT, *picks
    )
    return done, out


def test_run_writes_one_scored_trace_per_task(
    seed_run: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    done, out = seed_run
    assert done.returncode == 0, done.stderr[-3000:]
    traces = read_traces(out)
    assert [t.task_id for t in traces] == PICKED
    tasks = {t.id: t for t in read_tasks(SEED)}
    for trace in traces:
        assert trace.task == tasks[trace.task_id]
        assert trace.model.name and len(trace.model.sha256) == 64
        assert trace.stop_reason in ("answer", "max_steps", "token_budget", "context_full")
        assert 1 <= len(trace.steps) <= 3
        assert set(trace.rewards) >= REWARDS
        for reward in trace.rewards.values():
            assert reward.version and (reward.value is not None or reward.reason)
        assert trace.messages[0].role == "system" and trace.messages[1].content == tasks[trace.task_id].prompt
        for step in trace.steps:
            assert step.usage.completion_tokens > 0 and step.model_seconds > 0
            if step.action == "tool_call":
                assert step.result is not None  # every parsed call reached a real server
        assert trace.wall_seconds >= trace.model_seconds > 0
    # the summary table names every task and every reward
    for name in [*PICKED, *REWARDS, "tok/s"]:
        assert name in done.stdout


def test_constrained_turns_always_parse(seed_run: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    """Under the grammar a finished turn is a call of an existing tool with valid arguments, or an answer."""
    import jsonschema

    _, out = seed_run
    for trace in read_traces(out):
        for step in trace.steps:
            if step.finish_reason == "length":
                continue
            assert step.action in ("tool_call", "answer"), step.raw_text
            if step.call is not None:
                spec = trace.tool(step.call.name)
                assert spec is not None
                jsonschema.validate(step.call.arguments, spec.input_schema)


def test_prefix_cache_is_reused_across_turns(seed_run: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    _, out = seed_run
    later = [s.usage for t in read_traces(out) for s in t.steps if s.index > 0]
    assert later, "no episode took a second step"
    for usage in later:
        assert usage.prompt_tokens_reused > 0
        assert usage.prompt_tokens_evaluated <= usage.new_prompt_tokens + 2


def test_show_prints_a_trace(
    seed_run: tuple[subprocess.CompletedProcess[str], Path],
    sandbox_cli: Callable[..., subprocess.CompletedProcess[str]],
) -> None:
    _, out = seed_run
    shown = sandbox_cli("show", str(out), "--trace", "music-play-toxic")
    assert shown.returncode == 0, shown.stderr
    assert "Toxic" in shown.stdout and "step 0" in shown.stdout and "tool_syntax" in shown.stdout


def test_run_with_a_server_written_by_others(
    tmp_path: Path, sandbox_cli: Callable[..., subprocess.CompletedProcess[str]]
) -> None:
    config = tmp_path / "mcp.json"
    config.write_text(
        json.dumps(
            {"mcpServers": {"time": {"command": "mcp-server-time", "args": ["--local-timezone", "UTC"]}}}
        )
    )
    tasks = tmp_path / "tasks.jsonl"
    tasks.write_text(
        json.dumps(
            {
                "id": "tokyo-noon",
                "prompt": "It is 12:00 in UTC. What time is it in Asia/Tokyo?",
                "servers": ["time"],
                "expected_answer": "21:00",
                "answer_match": "contains",
                "ideal_calls": [
                    {
                        "name": "convert_time",
                        "arguments": {
                            "source_timezone": ["UTC"],
                            "time": ["12:00"],
                            "target_timezone": ["Asia/Tokyo"],
                        },
                    }
                ],
            }
        )
        + "\n"
    )
    out = tmp_path / "traces.jsonl"
    done = sandbox_cli("run", "--tasks", str(tasks), "--servers", str(config), "--out", str(out), *SHORT)
    assert done.returncode == 0, done.stderr[-3000:]
    (trace,) = read_traces(out)
    assert {t.name for t in trace.tools} >= {"get_current_time", "convert_time"}
    assert trace.servers[0].name == "time" and trace.servers[0].version
    assert trace.rewards["tool_syntax"].value is not None
