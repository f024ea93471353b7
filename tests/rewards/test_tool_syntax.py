"""The seed's tool-syntax formula, and how an episode is scored with it."""

from __future__ import annotations

import pytest
from _reward_builders import answer, broken, call, ideal, task, trace

from rewards import ToolUse, arguments_match, calculate_loss_for_tool_syntax, tool_syntax_reward

WEATHER = ideal("get_weather", city=["Paris"])
PARIS = {"city": "Paris"}


# --------------------------------------------------------------------------- the formula, branch by branch


def test_no_tool_used_where_one_was_needed_costs_half() -> None:
    assert calculate_loss_for_tool_syntax(None, WEATHER, needs_tool=True) == -0.5


def test_a_tool_other_than_the_ideal_costs_one() -> None:
    assert calculate_loss_for_tool_syntax(ToolUse("add", valid=True), WEATHER, needs_tool=True) == -1.0


def test_a_call_where_no_call_is_ideal_costs_one() -> None:
    assert calculate_loss_for_tool_syntax(ToolUse("add", valid=True), None, needs_tool=False) == -1.0


def test_an_unnamed_call_differs_from_every_ideal() -> None:
    assert calculate_loss_for_tool_syntax(ToolUse(None, valid=False), WEATHER, needs_tool=True) == -1.0
    assert calculate_loss_for_tool_syntax(ToolUse(None, valid=False), None, needs_tool=False) == -1.0


def test_a_valid_call_of_the_ideal_tool_earns_point_eight() -> None:
    assert calculate_loss_for_tool_syntax(ToolUse("get_weather", valid=True), WEATHER, needs_tool=True) == 0.8


def test_an_invalid_call_of_the_ideal_tool_scores_minus_half() -> None:
    assert (
        calculate_loss_for_tool_syntax(ToolUse("get_weather", valid=False), WEATHER, needs_tool=True) == -0.5
    )


def test_no_tool_needed_and_none_used_scores_nothing() -> None:
    assert calculate_loss_for_tool_syntax(None, None, needs_tool=False) == 0.0


# --------------------------------------------------------------------------- episodes


def test_a_valid_ideal_call_then_an_answer() -> None:
    the_task = task(ideal=[WEATHER])
    reward = tool_syntax_reward(
        trace(the_task, [call(0, "get_weather", PARIS), answer(1, "sunny")]), the_task
    )
    assert reward.value == 0.8
    assert reward.per_step == [0.8, None]
    assert reward.components == {
        "steps_scored": 1.0,
        "valid_calls": 1.0,
        "ideal_tool_calls": 1.0,
        "missing_ideal_calls": 0.0,
        "bfcl_matched": 1.0,
        "bfcl_argument_failures": 0.0,
    }
    assert (reward.name, reward.version) == ("tool_syntax", "4")


def test_arguments_that_break_the_schema_make_the_call_invalid() -> None:
    the_task = task(ideal=[WEATHER])
    reward = tool_syntax_reward(trace(the_task, [call(0, "get_weather", {"city": 3})]), the_task)
    assert reward.per_step == [-0.5]
    assert reward.components["valid_calls"] == 0.0


def test_a_call_of_a_tool_the_trace_does_not_list_is_invalid() -> None:
    the_task = task(ideal=[WEATHER])
    reward = tool_syntax_reward(trace(the_task, [call(0, "get_weather", PARIS)], tools=[]), the_task)
    assert reward.value == -0.5


def test_a_broken_call_with_the_ideal_name_is_judged_invalid() -> None:
    the_task = task(ideal=[WEATHER])
    assert tool_syntax_reward(trace(the_task, [broken(0, "get_weather", PARIS)]), the_task).value == -0.5


def test_a_broken_call_with_no_name_differs_from_the_ideal() -> None:
    the_task = task(ideal=[WEATHER])
    assert tool_syntax_reward(trace(the_task, [broken(0)]), the_task).value == -1.0


def test_the_wrong_tool_costs_one_and_leaves_the_ideal_call_missing() -> None:
    the_task = task(ideal=[WEATHER])
    reward = tool_syntax_reward(trace(the_task, [call(0, "add", {"a": 1, "b": 2})]), the_task)
    assert reward.value == -1.0
    assert reward.components["missing_ideal_calls"] == 1.0


def test_no_tool_needed_and_none_used_is_zero_with_a_reason() -> None:
    the_task = task(expected="4")
    reward = tool_syntax_reward(trace(the_task, [answer(0, "4")]), the_task)
    assert reward.value == 0.0
    assert reward.reason == "no tool needed, none used"
    assert reward.per_step == [None]


def test_each_call_where_none_is_needed_costs_one() -> None:
    the_task = task(expected="4")
    steps = [call(0, "add", {"a": 2, "b": 2}), call(1, "add", {"a": 2, "b": 2}), answer(2, "4")]
    reward = tool_syntax_reward(trace(the_task, steps), the_task)
    assert reward.per_step == [-1.0, -1.0, None]
    assert reward.value == -2.0


@pytest.mark.parametrize("steps", [[], [answer(0, "sunny")]])
def test_a_needed_tool_never_used_scores_minus_half_once(steps: list) -> None:
    the_task = task(ideal=[WEATHER, ideal("add")])
    reward = tool_syntax_reward(trace(the_task, steps), the_task)
    assert reward.value == -0.5
    assert reward.components["missing_ideal_calls"] == 2.0


def test_a_retry_after_an_invalid_call_is_judged_against_the_same_ideal_call() -> None:
    the_task = task(ideal=[WEATHER])
    steps = [call(0, "get_weather", {}), call(1, "get_weather", PARIS), answer(2, "sunny")]
    reward = tool_syntax_reward(trace(the_task, steps), the_task)
    assert reward.per_step == [-0.5, 0.8, None]
    assert reward.value == pytest.approx(0.3)


def test_repeating_a_call_that_worked_costs_one() -> None:
    the_task = task(ideal=[WEATHER])
    steps = [call(0, "get_weather", PARIS), call(1, "get_weather", PARIS)]
    assert tool_syntax_reward(trace(the_task, steps), the_task).per_step == [0.8, -1.0]


def test_ideal_calls_of_one_tool_are_matched_by_their_argument_values() -> None:
    the_task = task(ideal=[ideal("get_weather", city=["Paris"]), ideal("get_weather", city=["Oslo"])])
    steps = [call(0, "get_weather", {"city": "Oslo"}), call(1, "get_weather", PARIS)]
    reward = tool_syntax_reward(trace(the_task, steps), the_task)
    assert reward.value == pytest.approx(1.6)
    assert reward.components["bfcl_matched"] == 2.0
    assert reward.components["missing_ideal_calls"] == 0.0


def test_the_same_ideal_call_twice_wants_two_calls() -> None:
    the_task = task(ideal=[WEATHER, WEATHER])
    steps = [call(0, "get_weather", PARIS), call(1, "get_weather", PARIS), call(2, "get_weather", PARIS)]
    assert tool_syntax_reward(trace(the_task, steps), the_task).per_step == [0.8, 0.8, -1.0]


def test_argument_values_outside_the_acceptable_ones_make_the_call_invalid() -> None:
    # Version 1 only reported argument values; version 2 counts them towards validity.
    the_task = task(ideal=[WEATHER])
    reward = tool_syntax_reward(trace(the_task, [call(0, "get_weather", {"city": "Rome"})]), the_task)
    assert reward.value == -0.5
    assert reward.components["bfcl_matched"] == 0.0
    assert reward.components["bfcl_argument_failures"] == 1.0
    assert "step 0 get_weather: parameter 'city': 'Rome' is not among ['Paris']" in reward.reason


@pytest.mark.parametrize("tool", ["bad_schema", "remote_ref"])
def test_an_unusable_schema_on_the_ideal_tool_cannot_be_scored(tool: str) -> None:
    the_task = task(ideal=[ideal(tool)])
    reward = tool_syntax_reward(trace(the_task, [call(0, tool, {"x": 1})]), the_task)
    assert reward.value is None
    assert tool in reward.reason
    assert reward.per_step == [None]


def test_an_unusable_schema_does_not_matter_when_the_tool_is_the_wrong_one() -> None:
    the_task = task(ideal=[WEATHER])
    assert tool_syntax_reward(trace(the_task, [call(0, "bad_schema", {})]), the_task).value == -1.0


# --------------------------------------------------------------------------- argument values


def test_arguments_match_the_acceptable_values() -> None:
    wanted = ideal("get_weather", city=["Paris", "paris"], unit=["C", ""])
    assert arguments_match({"city": "paris"}, wanted)
    assert arguments_match({"city": "Paris", "unit": "C"}, wanted)
    assert not arguments_match({"city": "Paris", "unit": "F"}, wanted)
    assert not arguments_match({"unit": "C"}, wanted)


def test_booleans_are_not_numbers() -> None:
    assert not arguments_match({"n": True}, ideal("f", n=[1]))
    assert not arguments_match({"n": 1}, ideal("f", n=[True]))
    assert arguments_match({"n": 1.0}, ideal("f", n=[1]))
