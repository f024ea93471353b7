"""Replay: recorded episodes re-run with recorded tool results and no live server score identically."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import anyio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rewards import available_rewards, score_trace
from sandbox.episodes import Limits, Mode, run_episode
from sandbox.hub import ToolHub
from sandbox.models import ModelRequest, ScriptedModel
from sandbox.records import (
    ConfigError,
    ContextFullError,
    ServerInfo,
    Step,
    Task,
    ToolCall,
    ToolResult,
    ToolSpec,
    Trace,
    read_traces,
)
from sandbox.runs import ReplayHub, first_difference, replay_file, replay_trace

Cli = Callable[..., subprocess.CompletedProcess[str]]
RULE_REWARDS = {
    name: reward
    for name, reward in available_rewards().items()
    if name in ("outcome", "tool_syntax", "cot", "process", "bfcl")
}
TASK = Task(
    id="calc",
    prompt="What is 17*24-39?",
    servers=["calculator"],
    expected_answer="369",
    answer_match="number",
    ideal_calls=[{"name": "calculate", "arguments": {"expression": ["17*24-39"]}}],  # type: ignore[list-item]
)
CALL = '<think>t</think>\n<tool_call>\n{{"name": "calculate", "arguments": {{"expression": "{e}"}}}}\n'
CALL += "</tool_call>"


def assert_same_episode(original: Trace, replayed: Trace) -> None:
    assert first_difference(original, replayed) is None
    assert replayed.replayed_from == original.id and replayed.id != original.id
    assert replayed.messages == original.messages
    assert [s.model_dump(exclude={"tool_seconds"}) for s in replayed.steps] == [
        s.model_dump(exclude={"tool_seconds"}) for s in original.steps
    ]
    assert (replayed.final_answer, replayed.stop_reason, replayed.error) == (
        original.final_answer,
        original.stop_reason,
        original.error,
    )
    assert (replayed.model, replayed.servers, replayed.tools) == (
        original.model,
        original.servers,
        original.tools,
    )
    assert (replayed.task, replayed.sample, replayed.mode, replayed.sampling) == (
        original.task,
        original.sample,
        original.mode,
        original.sampling,
    )


async def _scripted_trace(turns: list[str], task: Task = TASK) -> Trace:
    from servers.calculator import server as calculator

    async with ToolHub.in_memory({"calculator": calculator}) as hub:
        return await run_episode(task, ScriptedModel(turns), hub)


# --------------------------------------------------------------------------- real model, real servers


@pytest.fixture(scope="module")
def real_run(sandbox_cli: Cli, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Short real episodes of the seed suite over stdio (stateful music, weather), scored. With 256
    tokens a turn the embedded model calls a tool in the first two and answers the third at once."""
    out = tmp_path_factory.mktemp("run") / "traces.jsonl"
    picks = ["music-play-toxic", "weather-denver-outfit-tonight", "calc-pens-word-problem"]
    done = sandbox_cli(
        "run", "--tasks", "seed", "--servers", "servers/mcp.json", "--out", str(out),
        "--max-steps", "2", "--max-tokens", "256", *(arg for task in picks for arg in ("--task", task)),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return out


@pytest.mark.model
def test_real_traces_replay_and_score_identically(sandbox_cli: Cli, real_run: Path, tmp_path: Path) -> None:
    first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    for out in (first, second):
        done = sandbox_cli("replay", str(real_run), "-o", str(out))  # no --servers: none can start
        assert done.returncode == 0, done.stderr[-3000:]
        assert "3 reproduced the recording, 0 diverged" in done.stdout
        assert "3 trace(s) scored as recorded, 0 changed" in done.stdout
    originals, replayed = read_traces(real_run), read_traces(first)
    assert any(step.call is not None for trace in originals for step in trace.steps)
    for original, again in zip(originals, replayed, strict=True):
        assert_same_episode(original, again)
        assert again.rewards == original.rewards  # every reward: value, components, version, reason
        assert (again.wall_seconds, again.tool_seconds) == (original.wall_seconds, original.tool_seconds)
    # deterministic: a second replay writes the same traces, bar the time it was made
    assert [t.model_dump(exclude={"created_at"}) for t in read_traces(second)] == [
        t.model_dump(exclude={"created_at"}) for t in replayed
    ]


# --------------------------------------------------------------------------- scripted, generated


TURNS = st.one_of(
    st.sampled_from(["17*24-39", "1/0", "2+", "17*24"]).map(lambda e: CALL.format(e=e)),
    st.just('<tool_call>{"name": "calculate", "arguments": {</tool_call>'),  # broken
    st.just('<tool_call>\n{"name": "no_such_tool", "arguments": {}}\n</tool_call>'),
    st.just('{"name": "calculate", "arguments": {"expression": "2*3"}}'),  # bare JSON: free mode reads it
    st.text(max_size=20).map(lambda t: f"<think>{t}</think>\n<answer>369</answer>"),
    st.just("<answer>12</answer>"),
    st.just("just words"),
)


@settings(max_examples=40, deadline=None)
@given(
    turns=st.lists(TURNS, min_size=1, max_size=6),
    ending=st.sampled_from(["answer", "context_full", "model_error"]),
    budget=st.sampled_from([4096, 30]),
    mode=st.sampled_from(["constrained", "free"]),
)
def test_scripted_episodes_of_every_ending_replay_identically(
    turns: list[str], ending: str, budget: int, mode: Mode
) -> None:
    from servers.calculator import server as calculator

    def script(request: ModelRequest) -> str:
        index = sum(1 for message in request.messages if message.role == "assistant")
        if index < len(turns):
            return turns[index]
        if ending == "context_full":
            raise ContextFullError("prompt of 9000 tokens leaves -4904 of 4096 for the reply")
        if ending == "model_error":
            raise ConnectionResetError("the backend fell over")
        return "<answer>369</answer>"

    async def both() -> tuple[Trace, Trace]:
        async with ToolHub.in_memory({"calculator": calculator}) as hub:
            original = await run_episode(
                TASK, ScriptedModel(script), hub, Limits(max_completion_tokens=budget), mode=mode
            )
        original = score_trace(original, TASK, RULE_REWARDS)
        replayed = score_trace(await replay_trace(original), TASK, RULE_REWARDS)
        return original, replayed

    original, replayed = anyio.run(both)
    assert_same_episode(original, replayed)
    assert replayed.rewards == original.rewards


# --------------------------------------------------------------------------- the hub and the live model


def _trace_with_calls(results: list[str]) -> Trace:
    """A recorded trace that called ``play`` with the same arguments once per result."""
    call = ToolCall(id="c", name="play", arguments={"track_id": "lib-001"})
    steps = [
        Step(index=i, raw_text="", action="tool_call", call=call, result=ToolResult(text=text))
        for i, text in enumerate(results)
    ]
    return Trace(
        id="t",
        task_id="play",
        task=Task(id="play", prompt="play Toxic", servers=["music"]),
        model={"name": "m"},  # type: ignore[arg-type]
        tools=[ToolSpec(name="play", server="music"), ToolSpec(name="forecast", server="weather")],
        servers=[ServerInfo(name="music", version="1"), ServerInfo(name="weather")],
        steps=steps,
        stop_reason="max_steps",
    )


@pytest.mark.anyio
async def test_recorded_results_come_back_in_order_once_each() -> None:
    hub = ReplayHub(_trace_with_calls(["played once", "played twice"]))
    answers = [await hub.call("play", {"track_id": "lib-001"}) for _ in range(3)]
    assert [a.text for a in answers[:2]] == ["played once", "played twice"]  # a stateful tool, as it was
    assert answers[2].is_error and answers[2].error_kind == "not_recorded" and hub.unrecorded == 1
    other = await hub.call("play", {"track_id": "lib-002"})
    assert other.error_kind == "not_recorded" and "lib-002" in other.text
    assert [t.name for t in hub.tools(["music"])] == ["play"]
    assert [s.name for s in hub.server_info(["music"])] == ["music"]


def test_a_live_model_gets_recorded_results_only_for_recorded_calls() -> None:
    recorded = CALL.format(e="2+2")
    original = anyio.run(_scripted_trace, [recorded, "<answer>4</answer>"])
    live = ScriptedModel([recorded, CALL.format(e="3+3"), "<answer>4</answer>"], name="live")
    replayed = anyio.run(replay_trace, original, live)
    first, second = replayed.steps[0].result, replayed.steps[1].result
    assert first == original.steps[0].result  # recorded: the recorded result, no server involved
    assert second is not None and second.is_error and second.error_kind == "not_recorded"
    assert replayed.model.name == "live" and replayed.replayed_from == original.id
    assert replayed.servers == original.servers and replayed.tools == original.tools
    difference = first_difference(original, replayed) or ""
    assert difference.startswith("step 1: raw_text was '<answer>4</answer>', now '<think>t</think>")


def test_a_changed_reading_of_the_turns_is_named() -> None:
    """A recording made by code that read a turn otherwise (an older parser) replays as today's loop
    reads it, and the first difference is named."""
    original = anyio.run(_scripted_trace, [CALL.format(e="17*24-39"), "<answer>369</answer>"])
    step = original.steps[0].model_copy(
        update={"action": "broken_call", "call": None, "result": None, "parse_error": "old parser"}
    )
    older = original.model_copy(update={"steps": [step, *original.steps[1:]]})
    replayed = anyio.run(replay_trace, older)
    assert first_difference(older, replayed) == "step 0: action was 'broken_call', now 'tool_call'"
    assert replayed.steps[0].result is not None and replayed.steps[0].result.error_kind == "not_recorded"
    assert replayed.id == f"{older.id}:replay" and replayed.replayed_from == older.id


def test_an_old_trace_without_the_replay_field_loads() -> None:
    original = anyio.run(_scripted_trace, ["<answer>369</answer>"])
    line = json.loads(original.model_dump_json())
    del line["replayed_from"]
    assert Trace.model_validate(line).replayed_from is None


# --------------------------------------------------------------------------- files and the command line


def _write(path: Path, traces: list[Trace]) -> Path:
    path.write_text("".join(t.model_dump_json() + "\n" for t in traces), encoding="utf-8")
    return path


def test_a_trace_without_a_recorded_result_is_skipped_with_the_reason(tmp_path: Path) -> None:
    good = score_trace(
        anyio.run(_scripted_trace, [CALL.format(e="2+2"), "<answer>4</answer>"]), TASK, RULE_REWARDS
    )
    cut = good.model_copy(update={"id": "cut", "steps": [good.steps[0].model_copy(update={"result": None})]})
    source = _write(tmp_path / "t.jsonl", [cut, good])
    report = anyio.run(replay_file, source, tmp_path / "r.jsonl", RULE_REWARDS)
    assert (report.replayed, report.reproduced, report.changed) == (1, 1, [])
    assert report.skipped == [("cut", "step 0 calls calculate but no result was recorded for it")]
    assert [t.replayed_from for t in read_traces(tmp_path / "r.jsonl")] == [good.id]
    with pytest.raises(ConfigError, match="no trace could be replayed"):
        anyio.run(replay_file, _write(tmp_path / "cut.jsonl", [cut]), tmp_path / "none.jsonl", RULE_REWARDS)
    assert not (tmp_path / "none.jsonl").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "cut.jsonl",
        "r.jsonl",
        "t.jsonl",
    ]  # no partial file


def test_rewards_of_another_version_are_not_compared(tmp_path: Path) -> None:
    trace = score_trace(anyio.run(_scripted_trace, ["<answer>369</answer>"]), TASK, RULE_REWARDS)
    old = trace.rewards["outcome"].model_copy(update={"value": 0.0, "version": "0-old"})
    stale = trace.model_copy(update={"rewards": {**trace.rewards, "outcome": old}})
    report = anyio.run(replay_file, _write(tmp_path / "t.jsonl", [stale]), tmp_path / "r.jsonl", RULE_REWARDS)
    assert (report.changed, report.other_versions) == ([], 1)
    wrong = trace.rewards["outcome"].model_copy(update={"value": 0.0})
    forged = trace.model_copy(update={"rewards": {**trace.rewards, "outcome": wrong}})
    again = anyio.run(replay_file, _write(tmp_path / "f.jsonl", [forged]), tmp_path / "g.jsonl", RULE_REWARDS)
    assert again.changed == [trace.id]


def test_cli_replays_a_file(sandbox_cli: Cli, tmp_path: Path) -> None:
    original = score_trace(
        anyio.run(_scripted_trace, [CALL.format(e="17*24-39"), "<answer>369</answer>"]), TASK, RULE_REWARDS
    )
    recorded = _write(tmp_path / "t.jsonl", [original])
    out = tmp_path / "r.jsonl"
    done = sandbox_cli("replay", str(recorded), "-o", str(out), "--rewards", "outcome,cot")
    assert done.returncode == 0, done.stderr
    assert "1 reproduced the recording, 0 diverged" in done.stdout and "outcome" in done.stdout
    (replayed,) = read_traces(out)
    assert replayed.replayed_from == original.id and replayed.rewards["outcome"].value == 1.0
    assert set(replayed.rewards) == {"outcome", "cot"}  # scored afresh: nothing carried over
    for args, says in (
        ((str(recorded), "-o", str(out)), "--overwrite"),
        ((str(recorded), "-o", str(recorded)), "input"),
    ):
        refused = sandbox_cli("replay", *args)
        assert refused.returncode == 2 and says in refused.stderr, refused.stderr
    assert read_traces(out) == [replayed]


@pytest.mark.anyio
async def test_recorded_state_snapshots_are_kept_by_a_replay() -> None:
    from sandbox.records import StateCheck
    from servers.music import make_server

    task = Task(
        id="play",
        prompt="Play Flowers",
        servers=["music"],
        expected_answer="Flowers",
        answer_match="contains",
        expected_state=[
            StateCheck(server="music", resource="music://state", path="now_playing", value="lib-010")
        ],
    )
    play = '<tool_call>\n{{"name": "play", "arguments": {{"track_id": "{t}"}}}}\n</tool_call>'
    turns = [play.format(t="lib-002"), play.format(t="lib-010"), "<answer>Flowers</answer>"]
    async with ToolHub.in_memory({"music": make_server}) as hub, hub.episode(task.servers) as episode:
        original = await run_episode(task, ScriptedModel(turns), episode)
    assert original.final_state["music"]["music://state"]["now_playing"] == "lib-010"
    replayed = await replay_trace(original)
    assert_same_episode(original, replayed)
    assert replayed.final_state == original.final_state
    assert [step.state for step in replayed.steps] == [step.state for step in original.steps]
    assert replayed.steps[0].state is not None


# --------------------------------------------------------------------------- turn formats

JSON_369 = '{"name": "calculate", "arguments": {"expression": "17*24-39"}}'
NATIVE_TURNS = {
    "hermes": f"<tool_call>\n{JSON_369}\n</tool_call>",
    "hermes+think": f"<think>\nx\n</think>\n<tool_call>\n{JSON_369}\n</tool_call>",
    "llama3": "<|python_tag|>" + JSON_369.replace("arguments", "parameters"),
    "mistral": f"[TOOL_CALLS][{JSON_369}]",
    "functiongemma": (
        "<start_function_call>call:calculate{expression:<escape>17*24-39<escape>}<end_function_call>"
    ),
}


async def _native_trace(label: str, mode: Mode = "free") -> Trace:
    from servers.calculator import server as calculator

    async with ToolHub.in_memory({"calculator": calculator}) as hub:
        model = ScriptedModel([NATIVE_TURNS[label], "It is 369."])
        return await run_episode(TASK, model, hub, mode=mode, turn_format=label)


@pytest.mark.parametrize("label", list(NATIVE_TURNS))
def test_a_native_trace_replays_in_the_format_it_ran(label: str) -> None:
    original = score_trace(anyio.run(_native_trace, label), TASK, RULE_REWARDS)
    assert original.format == label and original.steps[0].action == "tool_call"
    assert original.final_answer == "It is 369." and original.rewards["outcome"].value == 1.0
    replayed = score_trace(anyio.run(replay_trace, original), TASK, RULE_REWARDS)
    assert_same_episode(original, replayed)  # the same system prompt, parser and tool messages
    assert replayed.format == label and replayed.rewards == original.rewards


def test_a_live_replay_writes_the_recorded_format_unless_told_another() -> None:
    original = anyio.run(_native_trace, "functiongemma")
    seen: list[ModelRequest] = []

    def live_turns(request: ModelRequest) -> str:
        seen.append(request)
        return "It is 369."

    again = anyio.run(replay_trace, original, ScriptedModel(live_turns, name="live"))
    assert again.format == "functiongemma" and seen[0].template_tools is not None
    assert "<end_function_call>" in seen[0].stop or seen[0].grammar is not None
    seen.clear()
    tags = anyio.run(replay_trace, original, ScriptedModel(live_turns, name="live"), None, "tags")
    assert tags.format == "tags" and seen[0].template_tools is None
    assert "calculate" in tags.messages[0].content  # the tag prompt lists the tools itself
    unknown = original.model_copy(update={"format": "yaml-calls"})
    with pytest.raises(ValueError, match="turn format 'yaml-calls'"):
        anyio.run(replay_trace, unknown)


def test_cli_replay_format_goes_with_a_live_model_only(sandbox_cli: Cli, tmp_path: Path) -> None:
    original = score_trace(anyio.run(_native_trace, "mistral"), TASK, RULE_REWARDS)
    recorded = _write(tmp_path / "t.jsonl", [original])
    out = tmp_path / "r.jsonl"
    done = sandbox_cli(
        "replay", str(recorded), "-o", str(out), "--rewards", "outcome", "--format", "recorded"
    )
    assert done.returncode == 0, done.stderr
    assert "1 reproduced the recording, 0 diverged" in done.stdout
    assert [t.format for t in read_traces(out)] == ["mistral"]
    for value, says in (("tags", "goes with --model"), ("yaml", "--format must be recorded")):
        refused = sandbox_cli("replay", str(recorded), "-o", str(tmp_path / "x.jsonl"), "--format", value)
        assert refused.returncode == 2 and says in refused.stderr, refused.stderr
        assert len(refused.stderr.strip().splitlines()) == 1
