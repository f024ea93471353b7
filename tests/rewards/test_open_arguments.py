"""An ideal call whose argument is left open (a calculator's ``expression``) is matched by what the call
computed, not by its name alone: the cheapest episode that fooled bfcl, tool_syntax and process (call
the right tool with the wrong expression) now scores below the oracle, which still reaches each
maximum. Calculator-family tasks and episodes run against the real calculator server over stdio."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rewards import bfcl_reward, process_reward, tool_syntax_reward
from rewards._bfcl import check_result, same_json
from sandbox.episodes import Limits, run_episode
from sandbox.hub import ToolHub, load_config
from sandbox.models import ModelRequest, OracleModel, ScriptedModel, oracle_answer
from sandbox.records import IdealCall, Task, ToolResult, read_tasks
from sandbox.tasks import generate_tasks

ROOT = Path(__file__).resolve().parents[2]
REWARDS = {"bfcl": bfcl_reward, "tool_syntax": tool_syntax_reward, "process": process_reward}


def _wrong_expression(task: Task) -> str:
    """The reference expression with its parentheses dropped, or with 1 added: another value."""
    source = task.solution[0].arguments["expression"]
    assert isinstance(source, str)
    flat = source.replace("(", "").replace(")", "")
    return flat if flat != source else f"{source} + 1"


def _fooling_turns(task: Task, answer: str) -> ScriptedModel:
    """Call the right tool with the wrong expression, then answer ``answer`` regardless."""
    call = json.dumps({"name": "calculate", "arguments": {"expression": _wrong_expression(task)}})
    turns = [f"<think>I compute it.</think>\n<tool_call>\n{call}\n</tool_call>"]
    turns.append(f"<think>Done.</think>\n<answer>{answer}</answer>")

    def turn(request: ModelRequest) -> str:
        return turns[sum(1 for m in request.messages if m.role == "assistant")]

    return ScriptedModel(turn)


@pytest.mark.anyio
async def test_a_wrong_expression_scores_below_the_right_one_and_the_oracle_reaches_each_maximum() -> None:
    config = load_config(ROOT / "servers" / "mcp.json")
    tasks = await generate_tasks("calculator", 6, 0, "train", servers=ROOT / "servers" / "mcp.json")
    seed = [t for t in read_tasks(ROOT / "sandbox" / "data" / "seed.jsonl") if t.id.startswith("calc-")]
    assert all(t.ideal_calls[0].result for t in tasks + seed)
    async with ToolHub({"calculator": config["calculator"]}) as hub:
        for task in tasks + seed:
            oracle = await run_episode(task, OracleModel([task]), hub, Limits(), mode="free")
            right_text = await run_episode(task, _fooling_turns(task, oracle_answer(task)), hub, Limits())
            wrong_text = await run_episode(task, _fooling_turns(task, "7"), hub, Limits())
            assert right_text.steps[0].result is not None and not right_text.steps[0].result.is_error
            for name, reward in REWARDS.items():
                best = reward(oracle, task).value
                assert best == reward.maximum(oracle, task), (task.id, name)  # type: ignore[attr-defined]
                for fooling in (right_text, wrong_text):
                    value = reward(fooling, task).value
                    assert value is not None and best is not None and value < best, (task.id, name)
            assert "not one of the ideal call's" in bfcl_reward(right_text, task).reason


def test_old_ideal_calls_without_a_result_still_read_and_match_on_arguments_only() -> None:
    old = IdealCall.model_validate({"name": "calculate", "arguments": {}})
    assert old.result == {}
    assert check_result(None, old).ok


def test_a_result_without_the_field_or_structure_or_in_error_does_not_match() -> None:
    ideal = IdealCall(name="calculate", result={"exact": ["37/4"]})
    assert check_result(ToolResult(text="x", structured={"exact": "37/4"}), ideal).ok
    assert not check_result(ToolResult(text="x", structured={"exact": "3/74"}), ideal).ok  # not normalised
    assert not check_result(ToolResult(text="37/4"), ideal).ok
    assert not check_result(ToolResult(text="x", structured={"decimal": "9.25"}), ideal).ok
    assert not check_result(ToolResult(text="x", is_error=True, structured={"exact": "37/4"}), ideal).ok
    assert not check_result(None, ideal).ok


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=8,
)


@given(JSON, JSON)
def test_a_result_matches_exactly_when_its_field_is_the_same_json(produced: object, wanted: object) -> None:
    ideal = IdealCall(name="f", result={"v": [wanted]})
    outcome = check_result(ToolResult(text="", structured={"v": produced}), ideal).ok
    assert outcome == same_json(produced, wanted)
    assert check_result(ToolResult(text="", structured={"v": wanted}), ideal).ok
