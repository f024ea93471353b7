"""``sandbox score``: re-score a trace file with rewards, no episode run again.

Part of the CLI layer (it wires ``rewards`` to trace files). Each trace is scored against the task
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

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from rich.table import Table

from rewards import RewardFn, score_trace
from sandbox.records._errors import ConfigError
from sandbox.records._records import check_trace_output, iter_traces, replacing_trace_file, write_trace


@dataclass
class ScoreSummary:
    """What a re-scoring did: how many traces, and each re-scored reward's mean over those it scored."""

    out: Path
    traces: int = 0
    totals: dict[str, float] = field(default_factory=dict)
    scored: dict[str, int] = field(default_factory=dict)

    def add(self, name: str, value: float | None) -> None:
        self.totals.setdefault(name, 0.0)
        self.scored.setdefault(name, 0)
        if value is not None:
            self.totals[name] += value
            self.scored[name] += 1

    def mean(self, name: str) -> float | None:
        count = self.scored.get(name, 0)
        return self.totals[name] / count if count else None


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
            for name in rewards:
                summary.add(name, scored.rewards[name].value)
        if summary.traces == 0:
            raise ConfigError(f"{traces}: no traces in file")
    return summary


def summary_table(summary: ScoreSummary) -> Table:
    """One row per re-scored reward: how many traces it scored, and its mean."""
    table = Table(title=f"re-scored {summary.traces} trace(s)")
    for column in ("reward", "scored", "mean"):
        table.add_column(column, justify="left" if column == "reward" else "right")
    for name in summary.totals:
        mean = summary.mean(name)
        shown = "-" if mean is None or not math.isfinite(mean) else f"{mean:+.3f}"
        table.add_row(name, f"{summary.scored[name]}/{summary.traces}", shown)
    return table
