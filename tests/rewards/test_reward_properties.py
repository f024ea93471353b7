"""Properties every reward keeps on arbitrary traces: bounds, determinism, and the seed's ordering."""

from __future__ import annotations

from fractions import Fraction

import pytest
from _reward_builders import broken, call, ideal, task, trace
from _reward_strategies import CALL_NAMES, steps, traces
from hypothesis import given, settings
from hypothesis import strategies as st

from rewards import (
    answers_match,
    calculate_reward,
    cot_reward,
    outcome_reward,
    process_reward,
    tool_syntax_reward,
)
from rewards._types import RewardFn
from sandbox.records import Attributes, Task, Trace

TOOL_STEP_SCORES = {-1.0, -0.5, 0.8}
ALL_REWARDS: list[RewardFn] = [tool_syntax_reward, outcome_reward, cot_reward, process_reward]
SLOW = settings(deadline=None, max_examples=150)


@st.composite
def scored(draw: st.DrawFn) -> tuple[Trace, Task]:
    the_trace = draw(traces())
    return the_trace, the_trace.task


unit = st.floats(0.0, 1.0)
attribute_sets = st.builds(
    Attributes, helpfulness=unit, correctness=unit, coherence=unit, complexity=unit, verbosity=unit
)


# --------------------------------------------------------------------------- bounds


@SLOW
@given(scored())
def test_tool_syntax_stays_within_its_bounds(case: tuple[Trace, Task]) -> None:
    the_trace, the_task = case
    reward = tool_syntax_reward(the_trace, the_task)
    tool_steps = [index for index, step in enumerate(the_trace.steps) if step.action != "answer"]
    assert reward.per_step is not None and len(reward.per_step) == len(the_trace.steps)
    for index, score in enumerate(reward.per_step):
        assert score is None if index not in tool_steps else score in TOOL_STEP_SCORES | {None}
    if reward.value is None:
        assert reward.reason
    elif not tool_steps:
        assert reward.value in {0.0, -0.5}
    else:
        assert -1.0 * len(tool_steps) <= reward.value <= 0.8 * len(the_task.ideal_calls) + 1e-9
        assert reward.value == pytest.approx(sum(score for score in reward.per_step if score is not None))


@SLOW
@given(scored())
def test_outcome_is_one_zero_or_says_why_not(case: tuple[Trace, Task]) -> None:
    reward = outcome_reward(*case)
    assert reward.value in {0.0, 1.0} or (reward.value is None and reward.reason)


@SLOW
@given(scored())
def test_cot_is_minus_one_or_between_point_six_and_one_point_two(case: tuple[Trace, Task]) -> None:
    reward = cot_reward(*case)
    value = reward.value
    assert (value is None and reward.reason) or value == -1.0 or (value is not None and 0.6 <= value <= 1.2)


@SLOW
@given(scored())
def test_process_grades_each_step_in_zero_one(case: tuple[Trace, Task]) -> None:
    the_trace, the_task = case
    reward = process_reward(the_trace, the_task)
    assert reward.per_step is not None and len(reward.per_step) == len(the_trace.steps)
    assert all(grade is not None and 0.0 <= grade <= 1.0 for grade in reward.per_step)
    assert reward.value is None or 0.0 <= reward.value <= len(the_trace.steps) + 1


@given(st.booleans(), attribute_sets)
def test_calculate_reward_is_minus_one_or_between_point_six_and_one_point_two(
    correct: bool, attributes: Attributes
) -> None:
    value = calculate_reward(correct, attributes)
    assert value == -1.0 if not correct else 0.6 <= value <= 1.2


# --------------------------------------------------------------------------- purity


@SLOW
@given(scored())
def test_every_reward_is_deterministic_and_leaves_the_trace_alone(case: tuple[Trace, Task]) -> None:
    the_trace, the_task = case
    before = the_trace.model_dump_json()
    reread = Trace.model_validate_json(before)
    for reward in ALL_REWARDS:
        first = reward(the_trace, the_task)
        assert reward(the_trace, the_task) == first
        assert reward(reread, reread.task) == first
    assert the_trace.model_dump_json() == before


# --------------------------------------------------------------------------- the seed's ordering


@SLOW
@given(
    prefix=st.integers(0, 5).flatmap(lambda count: st.tuples(*[steps(index) for index in range(count)])),
    tool=st.sampled_from(["get_weather", "add"]),
    broken_name=st.none() | st.sampled_from(CALL_NAMES),
)
def test_a_valid_call_of_the_ideal_tool_never_scores_below_a_broken_one(
    prefix: tuple, tool: str, broken_name: str | None
) -> None:
    the_task = task(ideal=[ideal(tool)])
    arguments = {"city": "Paris"} if tool == "get_weather" else {"a": 1, "b": 2}
    at = len(prefix)
    good = tool_syntax_reward(trace(the_task, [*prefix, call(at, tool, arguments)]), the_task)
    bad = tool_syntax_reward(trace(the_task, [*prefix, broken(at, broken_name, arguments)]), the_task)
    assert good.per_step is not None and bad.per_step is not None
    good_score, bad_score = good.per_step[at], bad.per_step[at]
    assert good_score is not None and bad_score is not None
    assert good_score >= bad_score


# --------------------------------------------------------------------------- number matching

numbers = st.fractions(min_value=-(10**7), max_value=10**7, max_denominator=20)


def written_forms(value: Fraction) -> list[str]:
    """The same number written every way the matcher reads: fraction, decimal, thousands, percent."""
    forms = [f"{value.numerator}/{value.denominator}"]
    sign = "-" if value < 0 else ""
    whole, rest = divmod(abs(value), 1)
    if (rest * 10**6).denominator == 1:  # the decimal form ends within six places
        digits = f"{int(rest * 10**6):06d}".rstrip("0") or "0"
        forms += [f"{sign}{whole}.{digits}", f"{sign}{whole:,}.{digits}"]
    if (value * 100).denominator == 1:
        forms.append(f"{value * 100}%")
    if value.denominator == 1:
        forms += [str(value.numerator), f"{value.numerator:,}"]
    return forms


@given(numbers, st.data())
def test_equivalent_number_forms_agree(value: Fraction, data: st.DataObject) -> None:
    forms = written_forms(value)
    written, expected = data.draw(st.sampled_from(forms)), data.draw(st.sampled_from(forms))
    assert answers_match(f"so the answer is {written}", [expected], "number")


@given(numbers, numbers, st.data())
def test_different_numbers_do_not_match(first: Fraction, second: Fraction, data: st.DataObject) -> None:
    written = data.draw(st.sampled_from(written_forms(first)))
    expected = data.draw(st.sampled_from(written_forms(second)))
    assert answers_match(written, [expected], "number") == (first == second)
