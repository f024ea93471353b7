"""Tool syntax: the seed's per-call formula, summed over an episode.

The seed judges one response against the ideal one (:func:`calculate_loss_for_tool_syntax`). An
episode holds several responses, so :func:`tool_syntax_reward` applies the formula like this:

- Every tool-using step (action ``tool_call`` or ``broken_call``) is judged once. Valid calls are
  paired one to one with the ideal calls they fit (same tool, valid against that ideal call) by a
  maximum bipartite matching (:func:`rewards._bfcl.maximum_matching`), so the order of the calls
  never decides which ideal call a call counts for; of the possible pairings, the earliest calls win,
  so a repeat of a call that already worked is the one left over. A paired step is a valid call of
  the ideal tool. A step left unpaired is judged against an ideal call of its tool that was not yet
  used up at that step (unpaired, or paired with a later step): a retry after a bad call is judged
  against the same ideal call as the bad one, so retrying pays. With no such ideal call left, the
  step's tool "differs from the ideal one": repeating a call that already worked costs 1.0.
- A call is valid when it parsed (action ``tool_call`` with a call), names a tool the trace lists,
  its arguments validate against that tool's input schema (JSON Schema 2020-12, no remote ``$ref``),
  and, when the ideal call it is judged against gives acceptable values, its arguments pass the
  BFCL checker against them (:func:`rewards._bfcl.check_call`: exact types, normalised strings,
  ``""`` for optional, lists in order, dicts one level down). A broken call whose tool name was
  recovered is judged by that name, and is never valid; a broken call with no name differs from
  every ideal call. So a valid call of the ideal tool (0.8) always beats a broken one (-0.5 or -1.0).
- An episode that used no tool scores once: -0.5 if the task needs a tool, else 0.0 ("no tool
  needed, none used"). Ideal calls left unmade by an episode that did use tools are reported
  (``missing_ideal_calls``) but, as in the seed, not charged.
- Components: ``bfcl_matched`` counts the ideal calls paired with a valid call;
  ``bfcl_argument_failures`` the ideal-tool calls that fit the schema but not the acceptable values
  (the reason quotes the first one).
- A listed tool whose input schema is itself unusable makes an ideal-tool call's validity unknowable:
  the reward then cannot score (value None, the reason names the tool), rather than guess.

Version 2 (was 1): argument values count towards validity (version 1 only reported them), and
steps are paired with ideal calls by a maximum matching instead of first come, first served.
Version 3: bounded (:mod:`rewards._budget`): a schema nested too deep or whose ``$ref`` loops is
unusable; a schema ``pattern`` searches with a timeout; a call whose arguments nest deeper than the
budget, or a trace past the time budget, makes the reward unable to score (value None, the reason
says which); and the BFCL checker's rule for acceptable values of another type applies.

Bounds: each tool-using step scores -1.0, -0.5 or 0.8; the episode's value is their sum, between
-1.0 x (tool-using steps) and 0.8 x len(task.ideal_calls), or -0.5 / 0.0 when no tool was used.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rewards._bfcl import check_call, check_result, maximum_matching, same_value
from rewards._budget import bounded, check_depth, check_time, declare
from rewards._validity import call_validity
from sandbox.records import IdealCall, Reward, Step, Task, Trace

NAME = "tool_syntax"
VERSION = "4"  # 4: a call matches an ideal call with a ``result`` only when it produced that result

MISSING_TOOL_PENALTY = 0.5
WRONG_TOOL_PENALTY = 1.0
IDEAL_TOOL_BONUS = 0.5
VALID_CALL_BONUS = 0.3
INVALID_CALL_PENALTY = 1.0

# BFCL's convention: an empty string among the acceptable values means the argument may be left out.
OPTIONAL_ARGUMENT = ""


@dataclass(frozen=True)
class ToolUse:
    """A tool-using response as the formula sees it.

    ``name`` is None when the call did not parse far enough to name a tool. ``valid`` says whether
    the call parsed, names a listed tool, has arguments that fit that tool's input schema and, where
    the ideal call gives acceptable values, passes the BFCL checker against them.
    """

    name: str | None
    valid: bool


def calculate_loss_for_tool_syntax(
    response: ToolUse | None, ideal: IdealCall | None, needs_tool: bool
) -> float:
    """Score one response against the ideal call (None: no call is ideal). Higher is better.

    ``response`` is None when no tool was used. When none was used and none was needed, there is
    nothing to judge and the score stays 0.
    """
    score = 0.0  # score = 0
    if response is None and needs_tool:  # if no tool was used where one was needed:
        score -= MISSING_TOOL_PENALTY  # score -= 0.5
    elif _differs_from_ideal(response, ideal):  # elif the tool differs from the ideal one:
        score -= WRONG_TOOL_PENALTY  # score -= 1.0
    elif response is not None:  # else (it is the ideal tool):
        score += IDEAL_TOOL_BONUS  # score += 0.5
        score += VALID_CALL_BONUS if response.valid else -INVALID_CALL_PENALTY  # then +0.3 if valid else -1.0
    return score


def _differs_from_ideal(response: ToolUse | None, ideal: IdealCall | None) -> bool:
    """A tool was used, and it is not the ideal call's tool (an unnamed call is never the ideal tool)."""
    return response is not None and not _is_ideal_tool(response, ideal)


def _is_ideal_tool(response: ToolUse, ideal: IdealCall | None) -> bool:
    return ideal is not None and response.name == ideal.name


@dataclass(frozen=True)
class _Judged:
    """One tool-using step: how the formula sees it, the ideal call it is judged against, and why
    its validity cannot be told (None when it can)."""

    step: Step
    use: ToolUse
    ideal: IdealCall | None
    unknowable: str | None
    argument_failure: str | None = None  # why a schema-valid call failed the ideal call's values

    @property
    def scorable(self) -> bool:
        return self.unknowable is None or not _is_ideal_tool(self.use, self.ideal)


@bounded(NAME, VERSION)
def tool_syntax_reward(trace: Trace, task: Task) -> Reward:
    """Sum of the seed's tool-syntax score over the episode's tool-using steps (see module doc)."""
    positions = [index for index, step in enumerate(trace.steps) if _uses_tool(step)]
    if not positions:
        return _no_tool_used(trace, task)
    judged = _judge([trace.steps[index] for index in positions], trace, task.ideal_calls)
    per_step: list[float | None] = [None] * len(trace.steps)
    for index, item in zip(positions, judged, strict=True):
        per_step[index] = _step_score(item, task)
    components = _components(judged, task)
    unknowable = [item.unknowable for item in judged if not item.scorable and item.unknowable is not None]
    if unknowable:
        return _reward(None, components, per_step, "cannot tell whether a call is valid: " + unknowable[0])
    value = math.fsum(score for score in per_step if score is not None)
    return _reward(value, components, per_step, _summary(components, judged))


def _uses_tool(step: Step) -> bool:
    return step.action in ("tool_call", "broken_call")


def _no_tool_used(trace: Trace, task: Task) -> Reward:
    per_step: list[float | None] = [None] * len(trace.steps)
    components = {"steps_scored": 0.0, "missing_ideal_calls": float(len(task.ideal_calls))}
    if not task.needs_tool:
        return _reward(0.0, components, per_step, "no tool needed, none used")
    value = calculate_loss_for_tool_syntax(None, task.ideal_calls[0], needs_tool=True)
    return _reward(value, components, per_step, "the task needs a tool and none was used")


def _step_score(item: _Judged, task: Task) -> float | None:
    if not item.scorable:
        return None
    return calculate_loss_for_tool_syntax(item.use, item.ideal, task.needs_tool)


def _reward(
    value: float | None, components: dict[str, float], per_step: list[float | None], reason: str
) -> Reward:
    return Reward(
        name=NAME, version=VERSION, value=value, components=components, per_step=per_step, reason=reason
    )


# --------------------------------------------------------------------------- matching ideal calls


def _judge(steps: Sequence[Step], trace: Trace, ideals: Sequence[IdealCall]) -> list[_Judged]:
    """Pair valid calls with ideal calls (a maximum matching), then judge every step (module doc)."""
    seen = [_tool_use(step, trace) for step in steps]
    failures: dict[tuple[int, int], str | None] = {}  # each step against each ideal call, checked once

    def failure(i: int, j: int) -> str | None:
        if (i, j) not in failures:
            failures[i, j] = _argument_failure(steps[i], ideals[j], trace)
        return failures[i, j]

    def fits(i: int, j: int) -> bool:
        use, unknowable = seen[i]
        return use.valid and unknowable is None and failure(i, j) is None

    pairs = maximum_matching(len(steps), len(ideals), fits)
    owner = {j: i for i, j in pairs.items()}
    judged: list[_Judged] = []
    for i, step in enumerate(steps):
        use, unknowable = seen[i]
        if i in pairs:
            judged.append(_Judged(step, use, ideals[pairs[i]], unknowable))
            continue
        # not yet used up at this step: unpaired, or paired with a later step
        still_open = [
            j for j, ideal in enumerate(ideals) if ideal.name == use.name and owner.get(j, i + 1) > i
        ]
        ideal = ideals[still_open[0]] if still_open else None
        failed = failure(i, still_open[0]) if use.valid and ideal is not None else None
        use = ToolUse(name=use.name, valid=use.valid and failed is None)
        judged.append(_Judged(step, use, ideal, unknowable, failed))
    return judged


def _argument_failure(step: Step, ideal: IdealCall | None, trace: Trace) -> str | None:
    """Why the step's call fails the ideal call (None when it passes). Without acceptable values only
    the tool's name counts."""
    call = step.call
    if call is None or ideal is None or call.name != ideal.name:
        return "not the ideal call's tool"
    if ideal.arguments:
        spec = trace.tool(call.name)
        verdict = check_call(call.name, call.arguments, ideal, spec.input_schema if spec else None)
        if not verdict.ok:
            return verdict.reason
    verdict = check_result(step.result, ideal)  # an open argument: what the call computed
    return None if verdict.ok else verdict.reason


def arguments_match(arguments: dict[str, Any], ideal: IdealCall) -> bool:
    """Whether every argument the ideal call constrains holds one of its acceptable values.

    Values only, no schema (the full check is :func:`rewards._bfcl.check_call`). An argument missing
    from the call matches when ``""`` is acceptable (BFCL's "optional" mark). Values compare as BFCL
    compares them: strings normalised, booleans told apart from numbers (``True`` is not ``1``).
    """
    return all(_argument_matches(arguments, name, acceptable) for name, acceptable in ideal.arguments.items())


def _argument_matches(arguments: dict[str, Any], name: str, acceptable: list[Any]) -> bool:
    if name not in arguments:
        return OPTIONAL_ARGUMENT in acceptable
    return any(same_value(arguments[name], value) for value in acceptable)


# --------------------------------------------------------------------------- validity


def _tool_use(step: Step, trace: Trace) -> tuple[ToolUse, str | None]:
    """The step as the formula sees it, and why its validity cannot be told (None when it can).
    Validity is :func:`rewards.call_validity`, the one definition the viewer shows too."""
    check_time(f"judging step {step.index}")
    call = step.call
    if call is None:
        return ToolUse(name=None, valid=False), None
    check_depth(call.arguments, f"the arguments of step {step.index}")
    validity = call_validity(trace, step)
    return ToolUse(name=call.name, valid=validity.valid), validity.unknowable


# --------------------------------------------------------------------------- reporting


def _components(judged: Sequence[_Judged], task: Task) -> dict[str, float]:
    ideal_tool = [item for item in judged if _is_ideal_tool(item.use, item.ideal)]
    valid_ideal = [item for item in ideal_tool if item.use.valid]
    return {
        "steps_scored": float(sum(item.scorable for item in judged)),
        "valid_calls": float(sum(item.use.valid for item in judged)),
        "ideal_tool_calls": float(len(ideal_tool)),
        "missing_ideal_calls": float(len(task.ideal_calls) - len(valid_ideal)),
        "bfcl_matched": float(len(valid_ideal)),
        "bfcl_argument_failures": float(sum(item.argument_failure is not None for item in judged)),
    }


def _summary(components: dict[str, float], judged: Sequence[_Judged]) -> str:
    summary = (
        f"{components['steps_scored']:.0f} tool-using steps: {components['ideal_tool_calls']:.0f} of an "
        f"ideal tool, {components['valid_calls']:.0f} valid; {components['missing_ideal_calls']:.0f} ideal "
        f"calls never made validly"
    )
    failed = next((item for item in judged if item.argument_failure is not None), None)
    if failed is not None and failed.step.call is not None:
        summary += f"; step {failed.step.index} {failed.step.call.name}: {failed.argument_failure}"
    return summary


# What ``sandbox gauntlet`` checks: the attacks this reward catches, and its maximum (every ideal
# call made once, validly).
declare(
    tool_syntax_reward,
    catches=frozenset({"loop", "every_tool", "guess", "broken_call"}),
    maximum=lambda trace, task: (IDEAL_TOOL_BONUS + VALID_CALL_BONUS) * len(task.ideal_calls),
)
