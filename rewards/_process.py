"""Process-supervised reward: the PRM's grade of every step, plus 1.0 for a right final answer.

``per_step`` holds each step's grade (given the steps before it), in [0, 1]; the value is their sum
plus the outcome term, so it lies in [0, len(steps) + 1]. When the outcome cannot be judged (the task
has no expected answer) the value is None, the reason says why, and ``per_step`` is still reported.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from rewards._outcome import judge_answer
from rewards._prm import ProcessRewardModel, RulePRM, prm_label
from rewards._types import RewardFn
from sandbox.records import Reward, Task, Trace

NAME = "process"
VERSION = "1"

CORRECT_ANSWER_REWARD = 1.0
WRONG_ANSWER_REWARD = 0.0


def process_total(step_rewards: Sequence[float], answer_correct: bool) -> float:
    """Sum of the step rewards, plus 1.0 when the final answer is right."""
    outcome = CORRECT_ANSWER_REWARD if answer_correct else WRONG_ANSWER_REWARD
    return math.fsum(step_rewards) + outcome


def make_process_reward(prm: ProcessRewardModel) -> RewardFn:
    """The process reward with ``prm`` grading the steps; its version names the PRM."""
    version = f"{VERSION}+{prm_label(prm)}"

    def process_reward(trace: Trace, task: Task) -> Reward:
        grades = [_grade(prm, task, trace, index) for index in range(len(trace.steps))]
        components = {"step_sum": math.fsum(grades), "steps": float(len(grades))}
        correct, reason = judge_answer(trace, task)
        value = None
        if correct is not None:
            components["answer_correct"] = float(correct)
            value = process_total(grades, correct)
        per_step: list[float | None] = list(grades)
        return Reward(
            name=NAME, version=version, value=value, components=components, per_step=per_step, reason=reason
        )

    process_reward.__doc__ = f"Process-supervised total, steps graded by {prm_label(prm)}."
    return process_reward


def _grade(prm: ProcessRewardModel, task: Task, trace: Trace, index: int) -> float:
    """The PRM's grade of step ``index``; a grade outside [0, 1] is the PRM's bug, raised."""
    grade = prm.grade_step(task, trace.steps[:index], trace.steps[index])
    if not 0.0 <= grade <= 1.0:  # also rejects NaN
        raise ValueError(
            f"PRM {prm_label(prm)} graded step {index} of trace {trace.id!r} {grade!r}, outside [0, 1]"
        )
    return grade


process_reward = make_process_reward(RulePRM())
