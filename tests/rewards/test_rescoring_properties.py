"""Properties of the issue's part 6 not covered elsewhere: the interval bound of a tool-syntax step,
and re-scoring a scored trace after a JSON round trip changing nothing."""

from __future__ import annotations

from _reward_strategies import traces
from hypothesis import given, settings

from rewards import cot_reward, outcome_reward, process_reward, score_trace, tool_syntax_reward
from sandbox.records import Trace

RULE_REWARDS = {
    "cot": cot_reward,
    "outcome": outcome_reward,
    "process": process_reward,
    "tool_syntax": tool_syntax_reward,
}
SLOW = settings(deadline=None, max_examples=100)


@SLOW
@given(traces())
def test_each_tool_syntax_step_lies_in_the_issues_interval(trace: Trace) -> None:
    reward = tool_syntax_reward(trace, trace.task)
    assert reward.per_step is not None
    assert all(-1.5 <= score <= 0.8 for score in reward.per_step if score is not None)


@SLOW
@given(traces())
def test_rescoring_a_scored_trace_read_back_from_json_changes_nothing(trace: Trace) -> None:
    scored = score_trace(trace, trace.task, RULE_REWARDS)
    reread = Trace.model_validate_json(scored.model_dump_json())
    rescored = score_trace(reread, reread.task, RULE_REWARDS)
    assert rescored.model_dump_json() == scored.model_dump_json()
