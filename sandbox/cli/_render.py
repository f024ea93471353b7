"""Everything the CLI draws: rich tables, the progress bar, a trace as text. The only module that renders."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

from rich.console import Console
from rich.panel import Panel
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from sandbox.datasets import TraceLoss
from sandbox.records import RewardTally, Trace
from sandbox.runs import GauntletReport, RunSummary, ScoreSummary
from tools import ContractReport


def _signed(value: float | None, digits: int = 2) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{value:+.{digits}f}"


# --------------------------------------------------------------------------- runs


def episodes_table(traces: list[Trace]) -> Table:
    """One row per trace: task, steps, calls, each reward, seconds, tokens/s."""
    reward_names = sorted({name for trace in traces for name in trace.rewards})
    table = Table(title="episodes", show_lines=False)
    for column in ("task", "stop", "steps", "calls", *reward_names, "seconds", "tok/s"):
        table.add_column(column, justify="left" if column in ("task", "stop") else "right")
    for trace in traces:
        cells = [_reward_cell(trace, name) for name in reward_names]
        speed = trace.completion_tokens / trace.model_seconds if trace.model_seconds else 0.0
        table.add_row(
            trace.task_id,
            trace.stop_reason,
            str(len(trace.steps)),
            str(len(trace.tool_calls)),
            *cells,
            f"{trace.wall_seconds:.1f}",
            f"{speed:.0f}",
        )
    if traces:
        tally = RewardTally()
        for trace in traces:
            tally.add_trace(trace, reward_names)
        means = [_signed(tally.mean(name)) for name in reward_names]
        wall = sum(t.wall_seconds for t in traces)
        tokens = sum(t.completion_tokens for t in traces)
        model_s = sum(t.model_seconds for t in traces)
        table.add_section()
        table.add_row(
            "mean (seconds: total)",
            "",
            f"{sum(len(t.steps) for t in traces) / len(traces):.1f}",
            f"{sum(len(t.tool_calls) for t in traces) / len(traces):.1f}",
            *means,
            f"{wall:.1f}",
            f"{tokens / model_s:.0f}" if model_s else "-",
        )
    return table


def _reward_cell(trace: Trace, name: str) -> str:
    reward = trace.rewards.get(name)
    if reward is None or reward.value is None:
        return "-"
    return f"{reward.value:+.2f}"


class RunProgress:
    """Listens to a run (a ``RunEvents``): the notes of its start, then a rich progress bar on stderr
    (traces done, ETA, tokens/s, the running mean of each reward), drawn on a terminal only. Each
    finished trace gets one printed line (task id, stop reason, steps, seconds, rewards) when the
    console is not a terminal, so a log shows progress as it happens; with ``lines`` on a terminal
    too, and the traces are kept in ``traces`` (``sandbox run``)."""

    def __init__(self, console: Console, *, label: str = "generate", lines: bool = False) -> None:
        self._console = console
        self._lines = lines
        self._started = time.perf_counter()
        self._bar = Progress(
            TextColumn(f"[bold]{label}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            TextColumn("{task.fields[speed]}"),
            TextColumn("{task.fields[means]}"),
            console=console,
            disable=not console.is_terminal,
        )
        self._task: TaskID | None = None
        self.traces: list[Trace] = []
        self.summary: RunSummary | None = None  # where the run stands, once it has started

    def __enter__(self) -> RunProgress:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._bar.stop()

    def started(self, summary: RunSummary) -> None:
        self.summary = summary
        for note in summary.notes:
            self._console.print(note, highlight=False, markup=False)
        self._task = self._bar.add_task(
            "traces", total=summary.expected, completed=summary.before, speed="", means=_means(summary)
        )
        self._bar.start()

    def wrote(self, trace: Trace, summary: RunSummary) -> None:
        self.summary = summary
        if self._lines:
            self.traces.append(trace)
        if self._lines or not self._console.is_terminal:
            values = "  ".join(f"{name} {_signed(r.value)}" for name, r in trace.rewards.items())
            self._bar.console.print(
                f"[{summary.total}/{summary.expected}] {trace.task_id}  {trace.stop_reason}, "
                f"{len(trace.steps)} steps, {trace.wall_seconds:.1f} s  {values}",
                highlight=False,
                markup=False,
            )
        if self._task is None:
            return
        elapsed = time.perf_counter() - self._started
        speed = summary.completion_tokens / elapsed if elapsed > 0 else 0.0
        self._bar.update(
            self._task, completed=summary.total, speed=f"{speed:.0f} tok/s", means=_means(summary)
        )


def _means(summary: RunSummary) -> str:
    means = summary.rewards.means()
    return "  ".join(f"{name} {value:+.2f}" for name, value in means.items() if value is not None)


def run_table(summary: RunSummary) -> Table:
    """The run in a few rows: traces, speed, stop reasons, and each reward's mean over the whole run."""
    table = Table(title=f"generate: {summary.out}", show_header=False)
    table.add_column("what")
    table.add_column("value", justify="right")
    table.add_row("traces in the run", f"{summary.total}/{summary.expected}")
    table.add_row("written now", str(summary.written))
    if summary.written:
        table.add_row("seconds per trace (wall / written)", f"{summary.seconds / summary.written:.2f}")
        table.add_row("mean episode seconds", f"{summary.episode_seconds / summary.written:.2f}")
        table.add_row("tokens/s (all episodes together)", f"{summary.tokens_per_second:.0f}")
        table.add_row("stop reasons", ", ".join(f"{k} {v}" for k, v in summary.stops.most_common()))
    for name in summary.rewards.names():
        table.add_row(f"mean {name}", _signed(summary.rewards.mean(name), 3))
    return table


def score_table(summary: ScoreSummary) -> Table:
    """One row per re-scored reward: how many traces it scored, and its mean."""
    table = Table(title=f"re-scored {summary.traces} trace(s)")
    for column in ("reward", "scored", "mean"):
        table.add_column(column, justify="left" if column == "reward" else "right")
    for name in summary.rewards.names():
        scored = summary.rewards.scored[name]
        table.add_row(name, f"{scored}/{summary.traces}", _signed(summary.rewards.mean(name), 3))
    return table


def gauntlet_table(report: GauntletReport) -> Table:
    """Reward x attack: on how many tasks the attack scored strictly below the oracle, of those
    where both were scored. ``*`` marks a pair the reward declares it catches; green: below on
    every task, red: a declared pair that does not hold. Last column: the oracle at the maximum."""
    table = Table(title="gauntlet: tasks where the attack scored below the oracle (* declared)")
    table.add_column("reward")
    for attack in report.attacks:
        table.add_column(attack, justify="right")
    table.add_column("oracle max", justify="right")
    for reward in report.rewards:
        cells = []
        for attack in report.attacks:
            pair = report.pair(reward, attack)
            text = f"{pair.below}/{pair.scored}" + ("*" if pair.declared else " ")
            style = "green" if pair.holds else "bold red" if pair.declared else "dim"
            cells.append(f"[{style}]{text}[/]")
        best = report.oracle_max(reward)
        if best.declared:
            best_text = f"[{'green' if best.holds else 'bold red'}]{best.reached}/{best.checked}[/]"
        else:
            best_text = "[dim]-[/]"
        table.add_row(reward, *cells, best_text)
    return table


def loss_table(results: Sequence[TraceLoss]) -> Table:
    table = Table(title="next-token loss of the assistant tokens")
    for column in ("trace", "task", "tokens", "loss", "perplexity", "evaluated", "note"):
        table.add_column(column, justify="left" if column in ("trace", "task", "note") else "right")
    for r in results:
        table.add_row(
            r.trace_id,
            r.task_id,
            str(r.tokens),
            "-" if r.loss is None else f"{r.loss:.3f}",
            "-" if r.perplexity is None else f"{r.perplexity:.2f}",
            str(r.evaluated_tokens),
            r.reason,
        )
    scored = [r for r in results if r.loss is not None]
    if scored:
        tokens = sum(r.tokens for r in scored)
        mean = sum(r.loss * r.tokens for r in scored if r.loss is not None) / tokens
        table.add_section()
        table.add_row(
            "all",
            "",
            str(tokens),
            f"{mean:.3f}",
            f"{math.exp(mean):.2f}",
            str(sum(r.evaluated_tokens for r in results)),
            f"{len(scored)}/{len(results)} scored",
        )
    return table


def render_trace(trace: Trace, out: Console) -> None:
    out.print(
        Panel(
            trace.task.prompt,
            title=f"{trace.task_id}  [{trace.id}]",
            subtitle=f"model {trace.model.name}, {trace.mode} mode",
            highlight=False,
        )
    )
    for step in trace.steps:
        out.print(
            f"[bold]step {step.index}[/]  {step.action}  ({step.usage.completion_tokens} tokens, "
            f"{step.model_seconds:.2f} s)",
            highlight=False,
        )
        if step.thought:
            out.print("  thought: " + step.thought, highlight=False, markup=False, style="dim")
        if step.call is not None:
            out.print(f"  call: {step.call.name}({step.call.arguments})", highlight=False, markup=False)
        if step.parse_error:
            out.print(f"  broken: {step.parse_error}", style="yellow", highlight=False, markup=False)
        if step.result is not None:
            style = "red" if step.result.is_error else "green"
            out.print(f"  result: {step.result.text[:600]}", style=style, highlight=False, markup=False)
        if step.answer is not None:
            out.print(f"  answer: {step.answer}", style="bold", highlight=False, markup=False)
    expected = trace.task.expected_answer
    out.print(
        f"stop: {trace.stop_reason}   final answer: {trace.final_answer!r}   expected: {expected!r}",
        highlight=False,
        markup=False,
    )
    if trace.error:
        out.print(f"error: {trace.error}", style="red", markup=False)
    table = Table(title="rewards")
    for column in ("reward", "version", "value", "components", "reason"):
        table.add_column(column)
    for name, reward in trace.rewards.items():
        value = "-" if reward.value is None else f"{reward.value:+.3f}"
        parts = ", ".join(f"{k}={v:g}" for k, v in reward.components.items())
        table.add_row(name, reward.version, value, parts, reward.reason)
    out.print(table)


# --------------------------------------------------------------------------- tools


def print_report(report: ContractReport, console: Console) -> None:
    """A table with a row per tool, then every finding, violations first."""
    console.print(_table(report))
    for finding in sorted(report.findings, key=lambda f: f.severity != "violation"):
        style, mark = ("red", "✗") if finding.severity == "violation" else ("yellow", "!")
        console.print(
            f"{mark} {finding.tool} [{finding.check}] {finding.message}",
            style=style,
            highlight=False,
            markup=False,
        )
        if finding.arguments is not None:
            console.print(f"    arguments: {finding.arguments}", style="dim", highlight=False, markup=False)
    crashed = any(f.check == "crash" for f in report.findings)
    if crashed and report.server_log:
        console.print(f"the server's stderr is in {report.server_log}", highlight=False, markup=False)


def _table(report: ContractReport) -> Table:
    table = Table(
        title=f"{report.server} ({report.transport}): {report.examples} generated calls per tool, "
        f"timeout {report.timeout:g} s"
    )
    for column in ("tool", "valid calls", "errors", "invalid calls", "rejected", "stress", "skipped"):
        table.add_column(column, justify="left" if column == "tool" else "right")
    table.add_column("violations", justify="right")
    table.add_column("warnings", justify="right")
    for tool in report.tools:
        table.add_row(
            tool.name,
            str(tool.valid_calls),
            str(tool.valid_errors),
            str(tool.invalid_calls),
            str(tool.invalid_rejected),
            str(tool.stress_calls),
            str(tool.skipped_calls),
            _colour(len(tool.violations), "red"),
            _colour(len(tool.warnings), "yellow"),
        )
    return table


def _colour(count: int, colour: str) -> str:
    return f"[{colour}]{count}[/]" if count else "0"
