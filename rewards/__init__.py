"""Rewards: pure, deterministic functions of (trace, task) -> Reward.

Each seed formula lives in its own module and reads line by line next to the seed's pseudo-code:

- ``tool_syntax``: the seed's tool-syntax score per tool-using step, summed (:func:`tool_syntax_reward`);
- ``outcome``: 1.0 when the final answer matches an acceptable answer (:func:`outcome_reward`);
- ``cot``: the seed's CoT formula over the outcome and a PRM's five attributes (:func:`cot_reward`);
- ``process``: a PRM's step grades, summed, plus the outcome (:func:`process_reward`);
- ``process_mean``: the length-free variant, the mean step grade plus the outcome
  (:func:`process_mean_reward`);
- ``bfcl``: BFCL's AST accuracy, 1.0 when the calls match the ideal calls one to one (:func:`bfcl_reward`,
  over the argument checker :func:`check_call` and the matcher :func:`match_calls`).

A reward that cannot score returns ``value=None`` with a reason, also when it runs past its time or
depth budget (:func:`reward_budget`, :class:`BudgetExceeded`); one that crashes raises. Process
reward models plug in behind :class:`ProcessRewardModel`: :class:`MilestonePRM` (tool steps graded
by milestones reached and minefields, over recorded server state; with :class:`RulePRM` behind
:class:`ToolAwarePRM`, the default of ``process``), :class:`RulePRM` and :class:`VerifierPRM`
(arithmetic checked exactly) need no model, :class:`JudgePRM` reads a judge model's expected
scores through a :class:`JudgeBackend` passed in (:func:`make_judge_rewards`), and
:class:`MonteCarloPRM` grades a step by the share of a policy's continuations (:class:`Rollouts`,
passed in) that reach the expected answer;
:func:`earliest_error` and :func:`processbench_f1` score step graders the ProcessBench way. Rewards
register by name in the ``sandbox.rewards`` entry-point group (:func:`available_rewards`).
"""

from rewards._bfcl import CallAttempt, CallCheck, CallMatching, bfcl_reward, check_call, match_calls
from rewards._budget import BudgetExceeded, reward_budget
from rewards._cot import calculate_reward, cot_reward, make_cot_reward
from rewards._judge import JudgeBackend, JudgePRM, OptionScore, expected_score, make_judge_rewards
from rewards._milestone import MilestonePRM, ToolAwarePRM, is_tool_task, task_milestones
from rewards._montecarlo import MonteCarloPRM, Rollouts
from rewards._outcome import AnswerSpecError, answers_match, judge_outcome, outcome_reward
from rewards._prm import ProcessRewardModel, RulePRM, grade_all
from rewards._process import (
    make_process_mean_reward,
    make_process_reward,
    process_mean_reward,
    process_mean_total,
    process_reward,
    process_total,
)
from rewards._processbench import earliest_error, processbench_f1
from rewards._registry import RewardError, available_rewards, score_trace
from rewards._state import StateVerdict, check_state
from rewards._tool_syntax import ToolUse, arguments_match, calculate_loss_for_tool_syntax, tool_syntax_reward
from rewards._types import RewardFn
from rewards._validity import CallValidity, call_validity, uses_tool
from rewards._verifier import VerifierPRM

__all__ = [
    "AnswerSpecError",
    "BudgetExceeded",
    "CallAttempt",
    "CallCheck",
    "CallMatching",
    "CallValidity",
    "JudgeBackend",
    "JudgePRM",
    "MilestonePRM",
    "MonteCarloPRM",
    "OptionScore",
    "ProcessRewardModel",
    "RewardError",
    "RewardFn",
    "Rollouts",
    "RulePRM",
    "StateVerdict",
    "ToolAwarePRM",
    "ToolUse",
    "VerifierPRM",
    "answers_match",
    "arguments_match",
    "available_rewards",
    "bfcl_reward",
    "calculate_loss_for_tool_syntax",
    "calculate_reward",
    "call_validity",
    "check_call",
    "check_state",
    "cot_reward",
    "earliest_error",
    "expected_score",
    "grade_all",
    "is_tool_task",
    "judge_outcome",
    "make_cot_reward",
    "make_judge_rewards",
    "make_process_mean_reward",
    "make_process_reward",
    "match_calls",
    "outcome_reward",
    "process_mean_reward",
    "process_mean_total",
    "process_reward",
    "process_total",
    "processbench_f1",
    "reward_budget",
    "score_trace",
    "task_milestones",
    "tool_syntax_reward",
    "uses_tool",
]
