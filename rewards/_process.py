"""Process-supervised rewards: the PRM's grade of every step, plus 1.0 for a right final answer.

- ``process`` is the seed's formula as written: the *sum* of the step grades plus the outcome, so it
  lies in [0, len(steps) + 1]. A longer episode of good steps earns more; a repeated step earns
  nothing from the bundled PRMs, so a loop does not pay, but length still can.
- ``process_mean`` is its length-free variant: the *mean* step grade (0.0 with no steps) plus the
  outcome, in [0, 2]. Ten good steps earn no more than one.

``per_step`` holds each step's grade (given the steps before it), in [0, 1]. When the outcome cannot
be judged (the task has no expected answer) the value is None, the reason says why, and ``per_step``
is still reported. Both run in time linear in the steps (:func:`rewards._prm.grade_all`) and within
the reward budget (:mod:`rewards._budget`).

The bundled ``process`` and ``process_mean`` grade steps with :class:`rewards.ToolAwarePRM`: the
milestone PRM on tool tasks (progress: a step earns 1.0 when it reaches a milestone not reached
before), the rule PRM elsewhere. A PRM with a ``minefield(task, steps, tools)`` method (the milestone
PRM) can end the reward: when a step stepped on one of the task's minefields, the value is the
reward's minimum, 0.0, whatever the answer, with ``components["minefield"] = 1.0`` and a reason
naming it. A PRM with ``grade_trace(trace, task)`` is given the whole trace (its tool schemas).

Version 6 (was 5): the outcome term follows outcome version 5 (a task's ``evidence``: a right answer
no successful call backs is wrong). Version 5 (was 4): a milestone's ideal call with a ``result`` is
reached only by a call that produced it (a calculator call of the wrong expression is no progress).
Version 4 (was 3): the outcome term follows outcome version 4 (markup does not hide a negation or a
rival alternative). Version 3 (was 2): the outcome term checks ``expected_state`` first (outcome
version 3), the minefield rule, and the tool-aware default grader. Version 2 (was 1): the outcome
reward's version 2 rules decide the outcome term.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from rewards._budget import bounded, declare
from rewards._milestone import ToolAwarePRM
from rewards._outcome import judge_outcome
from rewards._prm import ProcessRewardModel, grade_all, prm_label
from rewards._types import RewardFn
from sandbox.records import Reward, Task, Trace

NAME = "process"
MEAN_NAME = "process_mean"
VERSION = "6"

CORRECT_ANSWER_REWARD = 1.0
WRONG_ANSWER_REWARD = 0.0
MINEFIELD_REWARD = 0.0  # the least either total can be


def process_total(step_rewards: Sequence[float], answer_correct: bool) -> float:
    """Sum of the step rewards, plus 1.0 when the final answer is right."""
    outcome = CORRECT_ANSWER_REWARD if answer_correct else WRONG_ANSWER_REWARD
    return math.fsum(step_rewards) + outcome


def process_mean_total(step_rewards: Sequence[float], answer_correct: bool) -> float:
    """Mean of the step rewards (0.0 with none), plus 1.0 when the final answer is right."""
    outcome = CORRECT_ANSWER_REWARD if answer_correct else WRONG_ANSWER_REWARD
    mean = math.fsum(step_rewards) / len(step_rewards) if step_rewards else 0.0
    return mean + outcome


Total = Callable[[Sequence[float], bool], float]


def make_process_reward(prm: ProcessRewardModel) -> RewardFn:
    """The process reward (sum of step grades + outcome) with ``prm`` grading the steps."""
    return _make(NAME, process_total, prm, f"Process-supervised total, steps graded by {prm_label(prm)}.")


def make_process_mean_reward(prm: ProcessRewardModel) -> RewardFn:
    """The length-free process reward (mean step grade + outcome) with ``prm`` grading the steps."""
    doc = f"Process-supervised mean step grade plus outcome, steps graded by {prm_label(prm)}."
    return _make(MEAN_NAME, process_mean_total, prm, doc)


def _make(name: str, total: Total, prm: ProcessRewardModel, doc: str) -> RewardFn:
    version = f"{VERSION}+{prm_label(prm)}"

    @bounded(name, version)
    def process_reward(trace: Trace, task: Task) -> Reward:
        grades = _grades(prm, task, trace)
        components = {"step_sum": math.fsum(grades), "steps": float(len(grades))}
        correct, reason = judge_outcome(trace, task)
        value = None
        if correct is not None:
            components["answer_correct"] = float(correct)
            value = total(grades, correct)
        per_step: list[float | None] = list(grades)
        mine = _minefield(prm, task, trace)
        if mine is not None:
            components["minefield"] = 1.0
            value = MINEFIELD_REWARD
            reason = f"minefield: {mine}; {reason}"
        return Reward(
            name=name, version=version, value=value, components=components, per_step=per_step, reason=reason
        )

    process_reward.__doc__ = doc
    return process_reward


def _minefield(prm: ProcessRewardModel, task: Task, trace: Trace) -> str | None:
    finder = getattr(prm, "minefield", None)
    return finder(task, trace.steps, trace.tools) if callable(finder) else None


def _grades(prm: ProcessRewardModel, task: Task, trace: Trace) -> list[float]:
    """The PRM's grade of every step; a grade outside [0, 1] is the PRM's bug, raised."""
    whole = getattr(prm, "grade_trace", None)
    grades = list(whole(trace, task)) if callable(whole) else grade_all(prm, task, trace.steps)
    if len(grades) != len(trace.steps):
        raise ValueError(f"PRM {prm_label(prm)} gave {len(grades)} grades for {len(trace.steps)} steps")
    for index, grade in enumerate(grades):
        if not 0.0 <= grade <= 1.0:  # also rejects NaN
            raise ValueError(
                f"PRM {prm_label(prm)} graded step {index} of trace {trace.id!r} {grade!r}, outside [0, 1]"
            )
    return grades


process_reward = make_process_reward(ToolAwarePRM())
process_mean_reward = make_process_mean_reward(ToolAwarePRM())

# What ``sandbox gauntlet`` checks: the attacks each catches, and its maximum (the sum's grows with
# the steps: every step graded 1.0 and the answer right).
declare(
    process_reward,
    catches=frozenset({"loop", "guess", "hedge", "distractor", "empty_answer"}),
    maximum=lambda trace, task: len(trace.steps) + CORRECT_ANSWER_REWARD,
)
declare(
    process_mean_reward,
    catches=frozenset({"loop", "every_tool", "guess", "hedge", "distractor", "empty_answer", "broken_call"}),
    maximum=lambda trace, task: 1.0 + CORRECT_ANSWER_REWARD,
)
