"""The process-supervised total and the reward built on a PRM."""

from __future__ import annotations

import re
from collections.abc import Sequence

import pytest
from _reward_builders import answer, broken, call, task, trace

from rewards import make_process_reward, process_reward, process_total
from sandbox.records import Attributes, Step, Task, Trace

FOUR = task(expected="4", match="number")


def test_the_total_adds_one_for_a_right_answer() -> None:
    assert process_total([1.0, 0.3, 0.5], answer_correct=True) == pytest.approx(2.8)
    assert process_total([1.0, 0.3, 0.5], answer_correct=False) == pytest.approx(1.8)
    assert process_total([], answer_correct=True) == 1.0


def test_the_reward_grades_every_step_and_adds_the_outcome() -> None:
    steps = [call(0, "add", {"a": 2, "b": 2}), broken(1), call(2, "add", {"a": 2, "b": 2}), answer(3, "4")]
    reward = process_reward(trace(FOUR, steps), FOUR)
    assert reward.per_step == [1.0, 0.0, 0.0, 1.0]
    assert reward.value == pytest.approx(3.0)
    assert reward.components == {"step_sum": 2.0, "steps": 4.0, "answer_correct": 1.0}
    assert (reward.name, reward.version) == ("process", "6+tool-aware-prm@1(milestone-prm@2,rule-prm@4)")


def test_a_wrong_answer_adds_nothing() -> None:
    reward = process_reward(trace(FOUR, [answer(0, "5")]), FOUR)
    assert reward.value == 1.0


def test_no_expected_answer_reports_steps_but_no_value() -> None:
    open_task = task()
    reward = process_reward(trace(open_task, [call(0, "add", {"a": 1, "b": 1}), answer(1, "2")]), open_task)
    assert reward.value is None
    assert reward.per_step == [1.0, 1.0]
    assert "no expected answer" in reward.reason


class OutOfRangePRM:
    name = "broken-prm"
    version = "0"

    def grade_step(self, task: Task, steps_so_far: Sequence[Step], step: Step) -> float:
        return 1.5

    def evaluate(self, trace: Trace, task: Task) -> Attributes:
        raise NotImplementedError


def test_a_grade_outside_zero_one_is_the_prms_bug() -> None:
    reward_fn = make_process_reward(OutOfRangePRM())
    with pytest.raises(ValueError, match=re.escape("broken-prm@0 graded step 0 of trace 'trace-1' 1.5")):
        reward_fn(trace(FOUR, [answer(0, "4")]), FOUR)
