"""Attacks on the rewards' time and depth: past a budget a reward says it cannot score, never hangs or
crashes."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from _reward_builders import answer, call, ideal, task, trace

from rewards import (
    VerifierPRM,
    available_rewards,
    bfcl_reward,
    check_call,
    grade_all,
    outcome_reward,
    reward_budget,
    tool_syntax_reward,
)
from rewards._budget import depth_of
from rewards._math import MATH_SECONDS
from rewards._prm import StepsBefore
from rewards._schemas import PATTERN_SECONDS, schema_validator
from sandbox.records import Step, Task, ToolSpec, Trace

TAN = "\\boxed{\\tan(\\tan(\\tan(\\tan(\\tan(\\tan(1))))))}"


def one_call(schema: dict[str, Any], arguments: dict[str, Any]) -> tuple[Trace, Task]:
    """A trace whose one step calls ``f`` (the ideal call) with ``arguments``, ``f`` taking ``schema``."""
    the_task = task(ideal=[ideal("f")])
    tools = [ToolSpec(name="f", input_schema=schema)]
    return trace(the_task, [call(0, "f", arguments)], tools=tools), the_task


def pattern_schema(pattern: str, *, wrapped: bool = False) -> dict[str, Any]:
    value: dict[str, Any] = {"type": "string", "pattern": pattern}
    if wrapped:  # a keyword outside the compiled subset: the schema goes to jsonschema
        value = {"anyOf": [value, {"type": "null"}]}
    return {"type": "object", "properties": {"s": value}}


# --------------------------------------------------------------------------- regular expressions


@pytest.mark.parametrize("wrapped", [False, True])
def test_the_reported_backtracking_pattern_is_judged_at_once(wrapped: bool) -> None:
    # Python's re takes minutes on this; the regex engine sees the nested quantifier through.
    the_trace, the_task = one_call(pattern_schema("^(a+)+$", wrapped=wrapped), {"s": "a" * 32 + "!"})
    reward = tool_syntax_reward(the_trace, the_task)
    assert reward.value == pytest.approx(-0.5)  # the ideal tool, invalid: +0.5 - 1.0


@pytest.mark.parametrize("wrapped", [False, True])
def test_a_pattern_that_backtracks_without_end_stops_at_its_timeout(wrapped: bool) -> None:
    the_trace, the_task = one_call(pattern_schema("^(a|a)+$", wrapped=wrapped), {"s": "a" * 40 + "!"})
    reward = tool_syntax_reward(the_trace, the_task)
    assert reward.value is None
    assert f"ran past {PATTERN_SECONDS:g} s" in reward.reason and "'^(a|a)+$'" in reward.reason


def test_pattern_properties_and_the_additional_properties_they_decide_are_bounded() -> None:
    schema = {
        "type": "object",
        "patternProperties": {"^(a|a)+$": {"type": "integer"}},
        "additionalProperties": False,
    }
    the_trace, the_task = one_call(schema, {"a" * 40 + "!": 1})
    reward = tool_syntax_reward(the_trace, the_task)
    assert reward.value is None and "ran past" in reward.reason


def test_a_good_pattern_still_decides() -> None:
    the_trace, the_task = one_call(pattern_schema("^[A-Z][a-z]+$", wrapped=True), {"s": "Paris"})
    assert tool_syntax_reward(the_trace, the_task).value == pytest.approx(0.8)


def test_unevaluated_properties_beside_pattern_properties_is_refused_with_its_reason() -> None:
    schema = {"patternProperties": {"^x": {}}, "unevaluatedProperties": False}
    assert "unevaluatedProperties beside patternProperties" in str(schema_validator(schema))


# --------------------------------------------------------------------------- math


def math_trace(final: str) -> tuple[Trace, Task]:
    the_task = task(expected="4", match="math")
    return trace(the_task, [answer(0, final)]), the_task


def test_a_formula_sympy_cannot_finish_stops_at_the_math_timeout() -> None:
    reward = outcome_reward(*math_trace(TAN))
    assert reward.value is None
    assert f"math-verify ran past {MATH_SECONDS:g} s" in reward.reason


def test_the_math_timeout_works_in_worker_threads_and_within_a_smaller_budget() -> None:
    outcome_reward(
        *math_trace("\\boxed{\\sqrt{16}}")
    )  # a worker is loaded, so the budget is the comparison's

    def stuck() -> Any:
        with reward_budget(seconds=1.0):
            return outcome_reward(*math_trace(TAN))

    with ThreadPoolExecutor(max_workers=2) as pool:
        verdict = pool.submit(stuck).result()
        fine = pool.submit(outcome_reward, *math_trace("\\boxed{\\sqrt{16}}")).result()
    assert verdict.value is None and "math-verify ran past" in verdict.reason
    assert fine.value == 1.0  # the worker killed for the first answer is replaced


# --------------------------------------------------------------------------- depth


def nested_items(levels: int) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    for _ in range(levels):
        schema = {"type": "array", "items": schema}
    return schema


def test_a_schema_nested_150_deep_is_unusable_not_a_crash() -> None:
    schema = {"type": "object", "properties": {"x": nested_items(150)}}
    the_trace, the_task = one_call(schema, {"x": []})
    reward = tool_syntax_reward(the_trace, the_task)
    assert reward.value is None and "nests deeper than 64 levels" in reward.reason


@pytest.mark.parametrize(
    "schema",
    [
        {"$ref": "#"},
        {"$defs": {"a": {"$ref": "#/$defs/b"}, "b": {"$ref": "#/$defs/a"}}, "$ref": "#/$defs/a"},
    ],
)
def test_a_ref_loop_is_unusable_not_a_crash(schema: dict[str, Any]) -> None:
    the_trace, the_task = one_call(schema, {"x": 1})
    reward = tool_syntax_reward(the_trace, the_task)
    assert reward.value is None and "$ref loop" in reward.reason


def test_a_recursive_schema_that_follows_the_instance_still_works() -> None:
    tree = {"type": "object", "properties": {"children": {"type": "array", "items": {"$ref": "#"}}}}
    the_trace, the_task = one_call(tree, {"children": [{"children": []}]})
    assert tool_syntax_reward(the_trace, the_task).value == pytest.approx(0.8)


def deep(levels: int) -> Any:
    value: Any = 1
    for _ in range(levels):
        value = {"x": value}
    return value


@pytest.mark.parametrize("levels", [215, 3000])
def test_arguments_nested_deeper_than_the_budget_cannot_be_scored(levels: int) -> None:
    the_trace, the_task = one_call({"type": "object"}, {"x": deep(levels)})
    looping = the_trace.model_copy(update={"steps": the_trace.steps * 2})
    for reward in (tool_syntax_reward(the_trace, the_task), bfcl_reward(the_trace, the_task)):
        assert reward.value is None and "nest deeper than 64 levels" in reward.reason
    for name in ("process", "process_mean", "cot"):
        scored = available_rewards()[name](looping, task(expected="4"))
        assert scored.value is None and "nest deeper than 64 levels" in scored.reason, name


def test_depth_is_measured_without_recursion_and_stops_past_the_limit() -> None:
    assert depth_of(1, 10) == 0
    assert depth_of({"a": [1, {"b": []}]}, 10) == 4
    assert depth_of(deep(100_000), 64) == 65


def test_the_checker_raises_the_budget_on_deep_arguments() -> None:
    from rewards import BudgetExceeded

    with pytest.raises(BudgetExceeded, match="nest deeper"):
        check_call("f", {"x": deep(100)}, ideal("f"), {"type": "object"})


# --------------------------------------------------------------------------- time


def many_steps(count: int) -> list[Step]:
    """A loop: the same failing call ``count`` times, then the answer."""
    steps = [call(i, "add", {"a": 2, "b": 2}, error_kind="tool_error") for i in range(count)]
    return [*steps, answer(count, "4")]


def test_every_reward_past_its_time_budget_says_so() -> None:
    the_task = task(expected="4", match="number", ideal=[ideal("add")])
    the_trace = trace(the_task, many_steps(50))
    for name, reward in available_rewards().items():
        with reward_budget(seconds=0.0):
            verdict = reward(the_trace, the_task)
        assert verdict.value is None, name
        assert "ran past its time budget of 0 s" in verdict.reason, name


def test_ten_thousand_steps_are_scored_by_every_reward() -> None:
    the_task = task(expected="4", match="number", ideal=[ideal("add")])
    the_trace = trace(the_task, many_steps(10_000))
    scored = {name: reward(the_trace, the_task) for name, reward in available_rewards().items()}
    assert all(verdict.value is not None for verdict in scored.values()), scored
    assert scored["process"].value == pytest.approx(0.3 + 1.0 + 1.0)  # the loop is paid nothing
    assert scored["process_mean"].value == pytest.approx(1.3 / 10_001 + 1.0)
    assert scored["cot"].value == pytest.approx(0.8)  # right, incoherent and complex


# --------------------------------------------------------------------------- linear grading


def test_steps_before_is_the_prefix_without_a_copy() -> None:
    steps = many_steps(5)
    prefix = StepsBefore(steps, 3)
    assert len(prefix) == 3 and list(prefix) == steps[:3]
    assert prefix[0] is steps[0] and prefix[-1] is steps[2] and prefix[1:] == steps[1:3]
    with pytest.raises(IndexError):
        prefix[3]


class CountingPRM:
    """A PRM without ``grade_steps``, recording what it was shown."""

    name = "counting"
    version = "1"

    def __init__(self) -> None:
        self.seen: list[int] = []

    def grade_step(self, task: Task, steps_so_far: Any, step: Step) -> float:
        self.seen.append(len(steps_so_far))
        return 1.0

    def evaluate(self, trace: Trace, task: Task) -> Any:
        raise NotImplementedError


def test_a_prm_without_a_whole_trace_method_is_asked_step_by_step() -> None:
    prm = CountingPRM()
    assert grade_all(prm, task(), many_steps(4)) == [1.0] * 5
    assert prm.seen == [0, 1, 2, 3, 4]
    verifier = VerifierPRM()
    steps = [answer(0, "2 + 2 = 4"), answer(1, "2 + 2 = 5")]
    assert grade_all(verifier, task(), steps) == [1.0, 0.0]
