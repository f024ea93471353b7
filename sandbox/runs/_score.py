"""``sandbox score``: re-score a trace file with rewards, no episode run again.

Each trace is scored against the task
it carries, with :func:`rewards.score_trace`, so a reward named here replaces the trace's verdict
of the same name and every other reward already on the trace stays, each with the version that
made it (``Reward.version``). Traces stream from the input to the output one at a time; the output
is written beside its destination under a temporary name and moved into place only when every
trace was scored, so a bad line or a crashing reward leaves no half-written file, and an existing
output is replaced only with ``overwrite``.

The rule rewards need no model. A judge model's rewards plug in the same way: build them (say
``make_cot_reward(judge_prm)``) and pass them in ``rewards`` next to the rule rewards.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from rewards import RewardFn, score_trace
from sandbox.records import (
    ConfigError,
    RewardTally,
    check_trace_output,
    iter_traces,
    replacing_trace_file,
    write_trace,
)


@dataclass
class ScoreSummary:
    """What a re-scoring did: how many traces, and each re-scored reward's tally over them."""

    out: Path
    traces: int = 0
    rewards: RewardTally = field(default_factory=RewardTally)


def score_file(
    traces: Path, out: Path, rewards: Mapping[str, RewardFn], *, overwrite: bool = False
) -> ScoreSummary:
    """Write every trace of ``traces`` to ``out`` with ``rewards`` scored afresh (see module doc).

    Raises :class:`ConfigError` when ``out`` is the input or already holds traces (without
    ``overwrite``) or the input holds none, ``TraceFileError`` naming the line of a bad trace, and
    ``RewardError`` naming the reward and trace when a reward crashes.
    """
    check_trace_output(traces, out, overwrite=overwrite, made="re-scored")
    summary = ScoreSummary(out=out)
    with replacing_trace_file(out) as handle:
        for trace in iter_traces(traces):
            scored = score_trace(trace, trace.task, rewards)
            write_trace(handle, scored)
            summary.traces += 1
            summary.rewards.add_trace(scored, rewards)
        if summary.traces == 0:
            raise ConfigError(f"{traces}: no traces in file")
    return summary
