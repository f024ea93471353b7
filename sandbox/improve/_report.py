"""What an improve run reports: per-round evaluations, ``report.json`` and a plot of every reward.

An :class:`Evaluation` is what one model did on a set of tasks: each reward's mean, how often a
no-tool question (a task with neither ideal calls nor a solution) was answered with no call, and
how its episodes stopped. ``report.json`` holds the base model's evaluation, each round's (the tuned
model's, on the same held-out tasks and seeds), the held-out loss, training speed and the wall
time of every stage; :func:`write_plot` draws each reward per round, the base as round 0.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sandbox.records import RewardTally, Task, Trace

REPORT_FILE = "report.json"
PLOT_FILE = "rewards.png"
STATE_FILE = "state.json"


@dataclass(frozen=True)
class Evaluation:
    """One model on one set of tasks (see the module doc); ``rewards`` maps a name to its mean over
    the traces it scored."""

    traces: int
    rewards: dict[str, float]
    no_tool_tasks: int = 0
    direct_answers: float | None = None  # share of no-tool traces answered with no call
    stops: dict[str, int] = field(default_factory=dict)
    mean_steps: float = 0.0
    # family (the first word of a task's id) -> traces and outcome mean
    families: dict[str, dict[str, float]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def is_no_tool(task: Task) -> bool:
    """A question to answer directly: the task has neither ideal calls nor a solution."""
    return not task.ideal_calls and not task.solution


def evaluate_traces(traces: Sequence[Trace], tasks: Mapping[str, Task]) -> Evaluation:
    """The :class:`Evaluation` of ``traces``, whose tasks are looked up in ``tasks`` by id."""
    tally = RewardTally()
    for trace in traces:
        tally.add_trace(trace)
    means = {
        name: tally.sums[name] / tally.scored[name] for name in sorted(tally.seen) if tally.scored.get(name)
    }
    no_tool = [t for t in traces if t.task_id in tasks and is_no_tool(tasks[t.task_id])]
    direct = [t for t in no_tool if t.stop_reason == "answer" and not t.tool_calls]
    return Evaluation(
        traces=len(traces),
        rewards=means,
        no_tool_tasks=len(no_tool),
        direct_answers=len(direct) / len(no_tool) if no_tool else None,
        stops=dict(Counter(t.stop_reason for t in traces)),
        mean_steps=sum(len(t.steps) for t in traces) / len(traces) if traces else 0.0,
        families=_families(traces, tasks),
    )


def family_of(task: Task) -> str:
    """A task's family: the first word of its id (``sandbox.tasks`` starts each id with it)."""
    return task.id.split("-")[0]


def _families(traces: Sequence[Trace], tasks: Mapping[str, Task]) -> dict[str, dict[str, float]]:
    sums: dict[str, list[float]] = {}
    for trace in traces:
        task = tasks.get(trace.task_id)
        score = trace.rewards.get("outcome")
        if task is None or score is None or score.value is None:
            continue
        sums.setdefault(family_of(task), []).append(score.value)
    return {
        name: {"traces": len(values), "outcome": round(sum(values) / len(values), 4)}
        for name, values in sorted(sums.items())
    }


def write_plot(report: Mapping[str, Any], path: Path) -> Path:
    """Every held-out reward per round (round 0 is the base model), one panel each, with the
    held-out loss and the no-tool direct-answer share where the report has them; written as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    base = report["base"]
    rounds = report.get("rounds", [])
    series: dict[str, list[float]] = {}
    names = sorted(base["heldout"]["rewards"])
    for name in names:
        series[name] = [base["heldout"]["rewards"].get(name, math.nan)] + [
            r["heldout"]["rewards"].get(name, math.nan) for r in rounds
        ]
    if base["heldout"].get("direct_answers") is not None:
        series["no-tool answered directly"] = [base["heldout"]["direct_answers"]] + [
            _or_nan(r["heldout"].get("direct_answers")) for r in rounds
        ]
    if base.get("heldout_loss") is not None:
        series["held-out loss (demos)"] = [base["heldout_loss"]] + [
            _or_nan(r.get("heldout_loss")) for r in rounds
        ]
    columns = 3
    rows = max(1, math.ceil(len(series) / columns))
    figure, axes = plt.subplots(rows, columns, figsize=(4 * columns, 2.8 * rows), squeeze=False)
    xs = list(range(len(rounds) + 1))
    for axis, (name, values) in zip(axes.flat, series.items(), strict=False):
        axis.plot(xs, values, marker="o")
        axis.axhline(values[0], color="grey", linestyle=":", linewidth=1)
        axis.set_title(name, fontsize=10)
        axis.set_xticks(xs, ["base", *[str(x) for x in xs[1:]]])
        axis.grid(alpha=0.3)
    for axis in list(axes.flat)[len(series) :]:
        axis.set_visible(False)
    figure.suptitle("held-out means per round (base = round 0)")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    figure.savefig(temporary, format="png", dpi=90)
    plt.close(figure)
    temporary.replace(path)
    return path


def _or_nan(value: float | None) -> float:
    return math.nan if value is None else value
