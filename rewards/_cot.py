"""Chain-of-thought reward: the seed's formula over the answer's outcome and a PRM's attributes.

A wrong (or missing) final answer scores -1.0; a right one 1.0, plus 0.2 when helpful and coherent,
minus 0.2 when doubtful or needlessly complex, minus 0.2 when verbose. So the value is -1.0 or lies
in [0.6, 1.2]. "Right" is the outcome reward's verdict (:func:`rewards.judge_outcome`): the servers'
expected state first, then the answer; a task with neither cannot be scored (value None). It runs within the
reward budget (:mod:`rewards._budget`). Version 2 (was 1): the outcome reward's version 2 rules decide
"wrong", so they hold for every PRM's CoT reward, including those whose attributes come from the rule
PRM. Version 3: the outcome's expected_state decides too (a catalog Toxic played is wrong whatever
the answer says). Version 4: the outcome's version 4 rules (markup does not hide a negation or a
rival alternative). Version 5: the outcome's version 5 evidence rule (a right answer to a task
with ``evidence`` that no successful call backs is wrong).
"""

from __future__ import annotations

from rewards._budget import bounded, declare
from rewards._outcome import judge_outcome
from rewards._prm import ProcessRewardModel, RulePRM, prm_label
from rewards._types import RewardFn
from sandbox.records import Attributes, Reward, Task, Trace

NAME = "cot"
VERSION = "5"

WRONG_ANSWER_REWARD = -1.0
BASE_REWARD = 1.0
HELPFUL_COHERENT_BONUS = 0.2
DOUBTFUL_OR_COMPLEX_PENALTY = 0.2
VERBOSITY_PENALTY = 0.2
THRESHOLD = 0.5


def calculate_reward(final_answer_correct: bool, attributes: Attributes) -> float:
    """The seed's CoT reward: -1.0 for a wrong answer, else 1.0 adjusted by the attributes."""
    if not final_answer_correct:  # if final answer is wrong:
        return WRONG_ANSWER_REWARD  # return -1.0
    reward = BASE_REWARD  # reward = 1.0
    if _helpful_and_coherent(attributes):  # if helpfulness > 0.5 and coherence > 0.5:
        reward += HELPFUL_COHERENT_BONUS  # reward += 0.2
    if _doubtful_or_complex(attributes):  # if correctness < 0.5 or complexity > 0.5:
        reward -= DOUBTFUL_OR_COMPLEX_PENALTY  # reward -= 0.2
    if _verbose(attributes):  # if verbosity > 0.5:
        reward -= VERBOSITY_PENALTY  # reward -= 0.2
    return reward  # return reward


def _helpful_and_coherent(attributes: Attributes) -> bool:
    return attributes.helpfulness > THRESHOLD and attributes.coherence > THRESHOLD


def _doubtful_or_complex(attributes: Attributes) -> bool:
    return attributes.correctness < THRESHOLD or attributes.complexity > THRESHOLD


def _verbose(attributes: Attributes) -> bool:
    return attributes.verbosity > THRESHOLD


def make_cot_reward(prm: ProcessRewardModel) -> RewardFn:
    """The CoT reward with ``prm`` rating the attributes; its version names the PRM."""
    version = f"{VERSION}+{prm_label(prm)}"

    @bounded(NAME, version)
    def cot_reward(trace: Trace, task: Task) -> Reward:
        correct, reason = judge_outcome(trace, task)
        if correct is None:
            return Reward(name=NAME, version=version, value=None, reason=reason)
        attributes = prm.evaluate(trace, task)
        value = calculate_reward(correct, attributes)
        components = _components(correct, attributes)
        return Reward(name=NAME, version=version, value=value, components=components, reason=reason)

    cot_reward.__doc__ = f"The seed's CoT reward, attributes by {prm_label(prm)}."
    return cot_reward


def _components(correct: bool, attributes: Attributes) -> dict[str, float]:
    """The attributes, the outcome, and each term of the formula as applied (0.0 when not)."""
    # A wrong answer returns before any term applies.
    return {
        **attributes.model_dump(),
        "answer_correct": float(correct),
        "helpful_coherent_bonus": _term(correct, _helpful_and_coherent(attributes), HELPFUL_COHERENT_BONUS),
        "doubtful_or_complex_penalty": _term(
            correct, _doubtful_or_complex(attributes), -DOUBTFUL_OR_COMPLEX_PENALTY
        ),
        "verbosity_penalty": _term(correct, _verbose(attributes), -VERBOSITY_PENALTY),
    }


def _term(correct: bool, condition: bool, amount: float) -> float:
    return amount if correct and condition else 0.0


cot_reward = make_cot_reward(RulePRM())

# What ``sandbox gauntlet`` checks of every CoT reward: the attacks it catches, and its maximum.
COT_CATCHES = frozenset({"loop", "guess", "hedge", "distractor", "slop", "empty_answer"})
COT_MAXIMUM = BASE_REWARD + HELPFUL_COHERENT_BONUS
declare(cot_reward, catches=COT_CATCHES, maximum=lambda trace, task: COT_MAXIMUM)
