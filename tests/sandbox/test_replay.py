"""Replay: recorded episodes re-run with recorded tool results and no live server score identically."""

from __future__ import annotations

import json
from pathlib import Path

import anyio
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rewards import available_rewards, score_trace
from sandbox._episode import Limits, run_episode
from sandbox._errors import ConfigError, ContextFullError, TraceFileError
from sandbox._hub import ToolHub, load_config
from sandbox._models import LlamaModel, ModelRequest, ScriptedModel
from sandbox._records import Sampling, Task, Trace, read_tasks, write_trace
from sandbox._replay import ReplayHub, replay_file, replay_trace

ROOT = Path(__file__).resolve().parents[2]
RULE_REWARDS = {
    k: v for k, v in available_rewards().items() if k in ("outcome", "tool_syntax", "cot", "process")
}
TASK = Task(
    id="calc",
    prompt="What is 17*24-39?",
    servers=["calculator"],
    expected_answer="369",
    answer_match="number",
)


def same_episode(original: Trace, replayed: Trace) -> None:
    assert replayed.replayed_from == original.id
    assert [m.model_dump() for m in replayed.messages] == [m.model_dump() for m in original.messages]
    fields = ("raw_text", "action", "call", "result", "answer", "parse_error", "finish_reason", "usage")
    assert [[getattr(s, f) for f in fields] for s in replayed.steps] == [
        [getattr(s, f) for f in fields] for s in original.steps
    ]
    assert (replayed.final_answer, replayed.stop_reason, replayed.error) == (
        original.final_answer,
        original.stop_reason,
        original.error,
    )
    assert replayed.model == original.model and replayed.tools == original.tools


@pytest.mark.model
def test_real_episodes_replay_and_score_identically(llama_model: LlamaModel, tmp_path: Path) -> None:
    tasks = [t for t in read_tasks(ROOT / "sandbox" / "data" / "seed.jsonl") if t.servers][:2]
    config = load_config(ROOT / "servers" / "mcp.json")

    async def record() -> list[Trace]:
        used = {name for task in tasks for name in task.servers}
        async with ToolHub({name: config[name] for name in used}) as hub:
            return [
                score_trace(
                    await run_episode(
                        task, llama_model, hub, Limits(max_steps=3), sampling=Sampling(max_tokens=160)
                    ),
                    task,
                    RULE_REWARDS,
                )
                for task in tasks
            ]

    originals = anyio.run(record)
    recorded = tmp_path / "traces.jsonl"
    with recorded.open("w") as handle:
        for trace in originals:
            write_trace(handle, trace)
    out = tmp_path / "replayed.jsonl"
    summary = anyio.run(lambda: replay_file(recorded, out, RULE_REWARDS))  # no server is started
    assert (summary.traces, summary.same_rewards, summary.changed) == (2, 2, [])
    replayed = [Trace.model_validate_json(line) for line in out.read_text().splitlines()]
    for original, again in zip(originals, replayed, strict=True):
        same_episode(original, again)
        assert {n: r.value for n, r in again.rewards.items()} == {
            n: r.value for n, r in original.rewards.items()
        }
    with pytest.raises(ConfigError, match="--overwrite"):
        anyio.run(lambda: replay_file(recorded, out, RULE_REWARDS))


CALL = (
    '<think>t</think>\n<tool_call>\n{{"name": "calculate", "arguments": {{"expression": "{e}"}}}}'
    "\n</tool_call>"
)
TURNS = st.one_of(
    st.sampled_from(["17*24-39", "1/0", "2+", "17*24"]).map(lambda e: CALL.format(e=e)),
    st.just('<tool_call>{"name": "calculate", "arguments": {</tool_call>'),  # broken
    st.just('<tool_call>\n{"name": "no_such_tool", "arguments": {}}\n</tool_call>'),
    st.text(max_size=20).map(lambda t: f"<think>{t}</think>\n<answer>369</answer>"),
    st.just("<answer>12</answer>"),
    st.just("just words"),
)
ENDINGS = st.sampled_from(["none", "context_full", "model_error"])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(turns=st.lists(TURNS, min_size=1, max_size=6), ending=ENDINGS, budget=st.sampled_from([4096, 30]))
def test_scripted_episodes_of_every_ending_replay_identically(
    turns: list[str], ending: str, budget: int
) -> None:
    from servers.calculator import server as calculator

    def script(request: ModelRequest) -> str:
        index = len(request.messages) // 2 - 1
        if index < len(turns):
            return turns[index]
        if ending == "context_full":
            raise ContextFullError("prompt of 9000 tokens leaves -4904 of 4096 for the reply")
        if ending == "model_error":
            raise RuntimeError("the backend fell over")
        return "<answer>369</answer>"

    async def both() -> tuple[Trace, Trace]:
        async with ToolHub.in_memory({"calculator": calculator}) as hub:
            original = await run_episode(
                TASK, ScriptedModel(script), hub, Limits(max_completion_tokens=budget)
            )
        original = score_trace(original, TASK, RULE_REWARDS)
        replayed = score_trace(await replay_trace(original), TASK, RULE_REWARDS)
        return original, replayed

    original, replayed = anyio.run(both)
    same_episode(original, replayed)
    assert {n: r.value for n, r in replayed.rewards.items()} == {
        n: r.value for n, r in original.rewards.items()
    }


def test_a_live_model_gets_recorded_results_only_for_recorded_calls() -> None:
    recorded = '<tool_call>\n{"name": "calculate", "arguments": {"expression": "2+2"}}\n</tool_call>'
    original = anyio.run(_scripted_trace, [recorded, "<answer>4</answer>"])
    other = '<tool_call>\n{"name": "calculate", "arguments": {"expression": "3+3"}}\n</tool_call>'
    live = ScriptedModel([recorded, other, "<answer>4</answer>"], name="live")
    replayed = anyio.run(lambda: replay_trace(original, live))
    first, second = replayed.steps[0].result, replayed.steps[1].result
    assert first == original.steps[0].result  # recorded: the recorded result, no server involved
    assert second is not None and second.is_error and "not recorded" in second.text
    assert replayed.model.name == "live" and replayed.replayed_from == original.id


def test_recorded_results_are_handed_out_once_per_call() -> None:
    call = '<tool_call>\n{"name": "calculate", "arguments": {"expression": "2+2"}}\n</tool_call>'
    original = anyio.run(_scripted_trace, [call, "<answer>4</answer>"])
    hub = ReplayHub(original)
    first = anyio.run(lambda: hub.call("calculate", {"expression": "2+2"}))
    again = anyio.run(lambda: hub.call("calculate", {"expression": "2+2"}))
    assert not first.is_error and again.is_error and hub.unrecorded == 1


def test_a_call_without_a_recorded_result_is_refused() -> None:
    call = '<tool_call>\n{"name": "calculate", "arguments": {"expression": "2+2"}}\n</tool_call>'
    original = anyio.run(_scripted_trace, [call, "<answer>4</answer>"])
    steps = [original.steps[0].model_copy(update={"result": None}), original.steps[1]]
    with pytest.raises(TraceFileError, match="no recorded result"):
        anyio.run(lambda: replay_trace(original.model_copy(update={"steps": steps})))


def test_cli_replays_a_file(sandbox_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    call = '<tool_call>\n{"name": "calculate", "arguments": {"expression": "17*24-39"}}\n</tool_call>'
    original = score_trace(anyio.run(_scripted_trace, [call, "<answer>369</answer>"]), TASK, RULE_REWARDS)
    recorded = tmp_path / "t.jsonl"
    recorded.write_text(original.model_dump_json() + "\n")
    done = sandbox_cli("replay", str(recorded), "-o", str(tmp_path / "r.jsonl"), "--rewards", "outcome,cot")
    assert done.returncode == 0, done.stderr
    assert "1 scored as recorded, 0 differ" in done.stdout
    replayed = json.loads((tmp_path / "r.jsonl").read_text())
    assert replayed["replayed_from"] == original.id and replayed["rewards"]["outcome"]["value"] == 1.0
    again = sandbox_cli("replay", str(recorded), "-o", str(tmp_path / "r.jsonl"))
    assert again.returncode == 2 and "--overwrite" in again.stderr


async def _scripted_trace(turns: list[str]) -> Trace:
    from servers.calculator import server as calculator

    async with ToolHub.in_memory({"calculator": calculator}) as hub:
        return await run_episode(TASK, ScriptedModel(turns), hub)
