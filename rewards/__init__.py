"""Rewards: pure, deterministic functions of (trace, task) -> Reward.

Each seed formula lives in its own module and reads line by line next to the seed's pseudo-code:

- ``tool_syntax``: the seed's tool-syntax score per tool-using step, summed (:func:`tool_syntax_reward`);
- ``outcome``: 1.0 when the final answer matches an acceptable answer (:func:`outcome_reward`);
- ``cot``: the seed's CoT formula over the outcome and a PRM's five attributes (:func:`cot_reward`);
- ``process``: a PRM's step grades plus the outcome (:func:`process_reward`).

A reward that cannot score returns ``value=None`` with a reason; one that crashes raises. Process
reward models plug in behind :class:`ProcessRewardModel`; :class:`RulePRM` needs no model. Rewards
register by name in the ``sandbox.rewards`` entry-point group (:func:`available_rewards`).
"""

from rewards._cot import calculate_reward, cot_reward, make_cot_reward
from rewards._outcome import AnswerSpecError, answers_match, outcome_reward
from rewards._prm import ProcessRewardModel, RulePRM
from rewards._process import make_process_reward, process_reward, process_total
from rewards._registry import RewardError, available_rewards, score_trace
from rewards._tool_syntax import ToolUse, arguments_match, calculate_loss_for_tool_syntax, tool_syntax_reward
from rewards._types import RewardFn

__all__ = [
    "AnswerSpecError",
    "ProcessRewardModel",
    "RewardError",
    "RewardFn",
    "RulePRM",
    "ToolUse",
    "answers_match",
    "arguments_match",
    "available_rewards",
    "calculate_loss_for_tool_syntax",
    "calculate_reward",
    "cot_reward",
    "make_cot_reward",
    "make_process_reward",
    "outcome_reward",
    "process_reward",
    "process_total",
    "score_trace",
    "tool_syntax_reward",
]
