"""The oracle plays each seed task's reference solution through the real servers (stdio MCP)."""

from pathlib import Path

import pytest

from sandbox.episodes import Limits, run_episode
from sandbox.hub import ToolHub, load_config
from sandbox.models import ModelRequest, OracleError, OracleModel, oracle_answer, oracle_turns
from sandbox.records import IdealCall, Message, Sampling, Task, ToolSpec, read_tasks
from sandbox.runs import run_sample
from sandbox.turns import parse_turn

ROOT = Path(__file__).resolve().parents[2]
SEED = read_tasks(ROOT / "sandbox" / "data" / "seed.jsonl")


@pytest.mark.anyio
async def test_the_oracle_plays_every_seed_solution_and_answers() -> None:
    config = load_config(ROOT / "servers" / "mcp.json")
    used = sorted({name for task in SEED for name in task.servers})
    oracle = OracleModel(SEED)
    async with ToolHub({name: config[name] for name in used}) as hub:
        for task in SEED:
            trace = await run_sample(task, 0, oracle, hub, Limits(), mode="free", sampling=Sampling())
            calls = [(c.name, c.arguments) for c in trace.tool_calls]
            assert calls == [(c.name, c.arguments) for c in task.solution], task.id
            assert all(s.result is not None and not s.result.is_error for s in trace.steps[:-1]), task.id
            assert trace.stop_reason == "answer"
            assert trace.final_answer == oracle_answer(task)
            assert trace.model.backend == "oracle"


def test_turns_are_in_the_turn_format_with_distinct_thoughts() -> None:
    task = next(t for t in SEED if t.id == "music-play-toxic")
    turns = [parse_turn(text) for text in oracle_turns(task)]
    assert [t.action for t in turns] == ["tool_call", "tool_call", "answer"]
    assert turns[1].call is not None and turns[1].call.arguments == {"track_id": "lib-001"}
    assert turns[2].answer == "BoyWithUke"
    assert len({t.thought for t in turns}) == 3


def test_without_a_solution_it_plays_concrete_ideal_calls_or_answers_at_once() -> None:
    arguments = {"location": ["Paris", "paris"], "date": ["", "today"]}
    ideal = IdealCall(name="get_daily_forecast", arguments=arguments)
    task = Task(id="t", prompt="p", servers=["weather"], expected_answer="46", ideal_calls=[ideal])
    first = parse_turn(oracle_turns(task)[0])
    assert first.call is not None and first.call.arguments == {"location": "Paris", "date": "today"}
    bare = Task(id="b", prompt="q", expected_answer="4")
    assert [parse_turn(t).action for t in oracle_turns(bare)] == ["answer"]


def _request(prompt: str, tools: tuple[ToolSpec, ...] = ()) -> ModelRequest:
    return ModelRequest(
        messages=(Message(role="system", content="s"), Message(role="user", content=prompt)),
        sampling=Sampling(),
        tools=tools,
    )


def test_an_unknown_prompt_or_open_required_arguments_is_one_clear_error() -> None:
    task = Task(id="c", prompt="17*24-39?", servers=["calculator"], ideal_calls=[IdealCall(name="calculate")])
    oracle = OracleModel([task])
    with pytest.raises(OracleError, match="no task with the prompt"):
        oracle.complete(_request("something else"))
    schema = {"type": "object", "properties": {"expression": {"type": "string"}}, "required": ["expression"]}
    with pytest.raises(OracleError, match="leaves its required argument"):
        oracle.complete(_request("17*24-39?", (ToolSpec(name="calculate", input_schema=schema),)))
    other = task.model_copy(update={"id": "d", "expected_answer": "x"})
    with pytest.raises(OracleError, match="share a prompt"):
        OracleModel([task, other])


@pytest.mark.anyio
async def test_the_oracle_runs_in_memory_through_run_episode() -> None:
    from servers.calculator import server as calculator

    task = next(t for t in SEED if t.id == "calc-pens-word-problem")
    async with ToolHub.in_memory({"calculator": calculator}) as hub:
        trace = await run_episode(task, OracleModel([task]), hub)
    assert trace.steps[0].result is not None and "369" in trace.steps[0].result.text
    assert trace.final_answer == "369"
