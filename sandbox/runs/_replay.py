"""``sandbox replay``: re-run recorded episodes with their recorded tool results and no live server.

A trace holds every turn the model wrote and every tool result it got. Replaying it runs the same
episode loop (``run_episode``) with two stand-ins:

* :class:`ReplayModel` writes the recorded turns, with their recorded token counts, finish reasons
  and model time, then ends the episode the way it ended: a full context or a model failure is
  raised again from its recorded message (the failure itself is not re-run);
* :class:`ReplayHub` lists the recorded tools and servers and answers each call with its recorded
  result: the first unused recorded call with the same tool name and the same arguments, and each
  state read with the server state recorded beside that result (``Step.state``; before any call,
  the recorded ``final_state`` of a trace that made none), so recorded snapshots are kept.

The loop rebuilds the transcript (system prompt, retry notes, tool messages), so under unchanged code
a replayed trace has the original's messages, steps, answer and stop reason, and scores exactly as it
did: rewards can be changed and re-run over thousands of traces in seconds, deterministically. When
the code has changed (a new parser, a new system prompt), the replay shows how today's loop reads the
recorded turns, and :func:`first_difference` names the first place it differs from the recording.

With a live model instead (``--model M.gguf``), the model writes new turns against the recorded
tools: a recorded call gets its recorded result, any other an ``is_error`` result of kind
``not_recorded``. Tool results then never change between runs, and no server is needed.

Each trace replays in the turn format it ran (``Trace.format``: the same system prompt, parser and
tool-result wrapping), so a native trace reproduces too. A live model may be given another format
(``turn_format``: ``auto``, ``native``, ``tags``, a family or a label, resolved against the live
model's chat template); a scripted replay always reads the turns in their recorded format.

A replayed trace keeps its provenance (the recorded model unless a live one ran, the recorded servers
and tools) and names the trace it re-ran in ``replayed_from``. A scripted replay that reproduced the
recording keeps the recording's timings too: no model or tool ran.

Not replayable: a trace with a tool call whose result was never recorded (there is nothing to answer
it with); such a trace is skipped with the reason. A trace that ended in ``model_error`` or
``context_full`` replays up to that end, which it repeats from the recorded message.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rewards import RewardFn, score_trace
from sandbox.episodes import Limits, run_episode
from sandbox.models import Model, ModelRequest, ModelResponse, SyncModel
from sandbox.records import (
    ConfigError,
    ContextFullError,
    ModelInfo,
    ServerInfo,
    ServerState,
    Step,
    ToolResult,
    ToolSpec,
    Trace,
    check_trace_output,
    iter_traces,
    replacing_trace_file,
    write_trace,
)
from sandbox.runs._folder import run_trace_file
from sandbox.runs._score import ScoreSummary
from sandbox.turns import Format, format_from_label, is_format_choice

NOT_RECORDED = "not recorded: the trace being replayed has no result for {name} with arguments {arguments}"
# What a step must repeat for a replay to count as reproducing the recording (timings excluded).
_STEP_FIELDS = (
    "raw_text",
    "thought",
    "action",
    "call",
    "parse_error",
    "answer",
    "result",
    "finish_reason",
    "state",
)


class NotReplayableError(ValueError):
    """A trace that cannot be re-run from its record; the message says why."""


class ReplayModel(SyncModel):
    """Writes a trace's recorded turns in order, then ends the episode as the trace ended."""

    def __init__(self, trace: Trace) -> None:
        self._trace = trace
        self._next = 0
        self.info: ModelInfo = trace.model

    async def acomplete(self, request: ModelRequest) -> ModelResponse:
        return self.complete(request)  # no thread hop: nothing here blocks

    def complete(self, request: ModelRequest) -> ModelResponse:
        steps = self._trace.steps
        if self._next < len(steps):
            step = steps[self._next]
            self._next += 1
            finish: Any = step.finish_reason  # as recorded, so the replayed step repeats it
            return ModelResponse(step.raw_text, finish, step.usage, step.model_seconds)
        if self._trace.stop_reason == "context_full":
            raise ContextFullError(self._trace.error or "the context was full")
        if self._trace.stop_reason == "model_error":
            kind, message = _split_error(self._trace.error)
            # run_episode records "<exception type>: <message>": a type of the recorded name repeats it.
            raise type(kind, (Exception,), {})(message)
        raise IndexError(
            f"the recording of trace {self._trace.id} has {len(steps)} turn(s) and this replay asked "
            f"for turn {self._next + 1}: the replay diverged from the recording"
        )


class ReplayHub:
    """A trace's recorded tools and servers; each call answered with its recorded result.

    Satisfies the ``Hub`` protocol of ``run_episode``. A recorded result is handed out once: the
    first unused recorded call with the same tool name and arguments gets it, so a stateful tool
    called twice with the same arguments answers as it did, in order.
    """

    def __init__(self, trace: Trace) -> None:
        self._tools = list(trace.tools)
        self._servers = list(trace.servers)
        recorded = [step for step in trace.steps if step.call is not None and step.result is not None]
        self._recorded = [
            (step.call.name, _key(step.call.arguments), step.result)
            for step in recorded
            if step.call is not None and step.result is not None
        ]
        self._states = [step.state for step in recorded]
        # Before any call the state is the initial one: recorded only as a call-free trace's final state.
        self._state: ServerState | None = None if recorded else trace.final_state
        self._used: set[int] = set()
        self.unrecorded = 0

    def tools(self, servers: Sequence[str] | None = None) -> list[ToolSpec]:
        if servers is None:
            return list(self._tools)
        return [spec for spec in self._tools if not spec.server or spec.server in servers]

    def server_info(self, servers: Sequence[str] | None = None) -> list[ServerInfo]:
        if servers is None:
            return list(self._servers)
        return [info for info in self._servers if info.name in servers]

    async def call(
        self,
        name: str,
        arguments: Mapping[str, Any],
        *,
        servers: Sequence[str] | None = None,
        timeout: float | None = None,
    ) -> ToolResult:
        key = _key(arguments)
        for index, (recorded_name, recorded_key, result) in enumerate(self._recorded):
            if index not in self._used and recorded_name == name and recorded_key == key:
                self._used.add(index)
                self._state = self._states[index]
                return result
        self.unrecorded += 1
        self._state = None  # an unrecorded call may have changed the state: it is not known
        text = NOT_RECORDED.format(name=name, arguments=key)
        return ToolResult(text=text, is_error=True, error_kind="not_recorded")

    async def read_state(self, server: str, uri: str, *, timeout: float | None = None) -> Any:
        """The state recorded with the result handed out last (module doc); None when not recorded."""
        return (self._state or {}).get(server, {}).get(uri)


def recorded_format(trace: Trace) -> Format:
    """The turn format ``trace`` ran (:class:`NotReplayableError` for a label this code does not know)."""
    try:
        return format_from_label(trace.format)
    except ConfigError as exc:
        raise NotReplayableError(
            f"it ran the turn format {trace.format!r}, which this version does not know"
        ) from exc


def check_replayable(trace: Trace) -> None:
    """Raise :class:`NotReplayableError` for a trace that cannot be re-run from its record."""
    recorded_format(trace)
    for step in trace.steps:
        if step.action == "tool_call" and step.call is not None and step.result is None:
            raise NotReplayableError(
                f"step {step.index} calls {step.call.name} but no result was recorded for it"
            )


async def replay_trace(
    trace: Trace,
    model: Model | None = None,
    limits: Limits | None = None,
    turn_format: str | Format | None = None,
) -> Trace:
    """Re-run one trace's episode (see the module doc), unscored.

    Without ``model`` the recorded turns are replayed under limits that end the episode where the
    recording ended; with one, that model writes the turns under ``limits`` (default ``Limits()``)
    in ``turn_format`` (default: the recorded format).
    """
    check_replayable(trace)
    if model is not None and turn_format is not None:
        fmt: str | Format = turn_format
    else:
        fmt = recorded_format(trace)
    hub = ReplayHub(trace)
    scripted = model is None
    replayed = await run_episode(
        trace.task,
        ReplayModel(trace) if model is None else model,
        hub,
        _limits_that_end_like(trace) if scripted else (limits or Limits()),
        mode=trace.mode,
        sampling=trace.sampling,
        sample=trace.sample,
        turn_format=fmt,
    )
    update: dict[str, Any] = {"replayed_from": trace.id}
    if scripted:
        update["id"] = f"{trace.id}:replay"
        if first_difference(trace, replayed) is None:  # nothing ran: the recording's timings stand
            steps = [
                again.model_copy(update={"tool_seconds": recorded.tool_seconds})
                for again, recorded in zip(replayed.steps, trace.steps, strict=True)
            ]
            update |= {"steps": steps, "wall_seconds": trace.wall_seconds, "tool_seconds": trace.tool_seconds}
    return replayed.model_copy(update=update)


def first_difference(recorded: Trace, replayed: Trace) -> str | None:
    """Where a replayed episode first departs from the recording, in words; None if it does not."""
    for before, after in zip(recorded.steps, replayed.steps, strict=False):
        for name in _STEP_FIELDS:
            if getattr(before, name) != getattr(after, name):
                return f"step {before.index}: {name} was {_short(before, name)}, now {_short(after, name)}"
    if len(recorded.steps) != len(replayed.steps):
        return f"{len(recorded.steps)} step(s) recorded, {len(replayed.steps)} replayed"
    for name in ("stop_reason", "final_answer", "error", "final_state"):
        if getattr(recorded, name) != getattr(replayed, name):
            return f"{name} was {getattr(recorded, name)!r}, now {getattr(replayed, name)!r}"
    if len(recorded.messages) != len(replayed.messages):
        return f"{len(recorded.messages)} message(s) recorded, {len(replayed.messages)} replayed"
    for index, (sent, resent) in enumerate(zip(recorded.messages, replayed.messages, strict=True)):
        if sent != resent:
            return f"message {index} ({sent.role}) differs"
    return None


def _short(step: Step, name: str) -> str:
    value = getattr(step, name)
    if hasattr(value, "model_dump"):
        value = value.model_dump(exclude_defaults=True)
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _limits_that_end_like(trace: Trace) -> Limits:
    """Limits under which the loop stops where the recorded episode stopped, and for the same reason."""
    steps, spent = len(trace.steps), trace.completion_tokens
    if trace.stop_reason == "token_budget":
        return Limits(max_steps=steps + 1, max_completion_tokens=spent)
    if trace.stop_reason in ("context_full", "model_error"):
        return Limits(max_steps=steps + 1, max_completion_tokens=spent + 1)
    return Limits(max_steps=max(steps, 1), max_completion_tokens=spent + 1)


def _key(arguments: Mapping[str, Any]) -> str:
    """Arguments compared as canonical JSON: 1 and true differ, key order does not."""
    return json.dumps(arguments, sort_keys=True, ensure_ascii=False)


def _split_error(error: str | None) -> tuple[str, str]:
    kind, separator, message = (error or "").partition(": ")
    if not separator or not kind.isidentifier():
        return "ModelError", error or "the model failed"
    return kind, message


# --------------------------------------------------------------------------- files


@dataclass
class ReplayReport:
    """What a replay of a trace file did.

    ``reproduced`` counts scripted replays whose episode equals the recording; ``diverged`` and
    ``skipped`` hold ``(trace id, why)``; ``changed`` the ids of traces where a reward in both the
    recording and the replay, at the same version, now has another value. A reward recorded by
    another version of itself may rightly score differently: it is counted in ``other_versions``,
    not compared.
    """

    scores: ScoreSummary
    live: bool = False
    reproduced: int = 0
    diverged: list[tuple[str, str]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    other_versions: int = 0
    unrecorded_calls: int = 0

    @property
    def replayed(self) -> int:
        return self.scores.traces

    def lines(self) -> list[str]:
        """The report in plain lines, for the command line."""
        head = f"replayed {self.replayed} trace(s) into {self.scores.out}"
        if self.live:
            head += f"; {self.unrecorded_calls} call(s) had no recorded result"
        else:
            head += f": {self.reproduced} reproduced the recording, {len(self.diverged)} diverged"
        kept = self.replayed - len(self.changed)
        scores = f"rewards: {kept} trace(s) scored as recorded, {len(self.changed)} changed"
        if self.other_versions:
            scores += f" ({self.other_versions} recorded reward(s) of another version not compared)"
        lines = [head, scores]
        lines += [f"  diverged {trace_id}: {why}" for trace_id, why in self.diverged]
        lines += [f"  skipped {trace_id}: {why}" for trace_id, why in self.skipped]
        lines += [f"  changed {trace_id}" for trace_id in self.changed[:20]]
        return lines


RECORDED = "recorded"  # ``--format`` of ``sandbox replay``: each trace in the format it ran


def check_replay_format(turn_format: str, live: bool) -> str | None:
    """``sandbox replay --format``: None for :data:`RECORDED`, else the choice, which only a live
    model takes (:class:`ConfigError` otherwise, or for a value that is no format)."""
    if turn_format == RECORDED:
        return None
    if not is_format_choice(turn_format):
        raise ConfigError(f"--format must be recorded, auto, native, tags or a family, not {turn_format!r}")
    if not live:
        raise ConfigError(
            f"--format {turn_format} goes with --model: "
            "a recorded replay reads each trace in the format it ran"
        )
    return turn_format


def check_replay_paths(traces: Path, out: Path, *, overwrite: bool = False) -> Path:
    """The trace file to read (``traces`` or its run folder's), once ``out`` may be written.

    Raises :class:`ConfigError` when there is nothing to read, ``out`` is the input, or ``out``
    already holds traces and ``overwrite`` is not set.
    """
    source = run_trace_file(traces)
    check_trace_output(source, out, overwrite=overwrite, made="replayed")
    return source


async def replay_file(
    traces: Path,
    out: Path,
    rewards: Mapping[str, RewardFn],
    *,
    model: Model | None = None,
    limits: Limits | None = None,
    overwrite: bool = False,
    turn_format: str | Format | None = None,
) -> ReplayReport:
    """Replay every trace of ``traces`` (a trace file or a run folder) into ``out``, each scored
    afresh by ``rewards`` (no reward is carried over from the recording). ``turn_format``: the format a
    live ``model`` writes in (default: each trace's recorded one; see :func:`replay_trace`).

    ``out`` is written under a temporary name and moved into place at the end, so a failure leaves
    no half-written file. Raises :class:`ConfigError` when ``out`` is the input, already holds
    traces (without ``overwrite``), or no trace could be replayed.
    """
    source = check_replay_paths(traces, out, overwrite=overwrite)
    report = ReplayReport(scores=ScoreSummary(out=out), live=model is not None)
    with replacing_trace_file(out) as handle:
        for trace in iter_traces(source):
            replayed = await _replay_one(trace, model, limits, rewards, report, turn_format)
            if replayed is not None:
                write_trace(handle, replayed)
        if report.replayed == 0:
            why = f" ({report.skipped[0][1]})" if report.skipped else ""
            raise ConfigError(f"{source}: no trace could be replayed{why}")
    return report


async def _replay_one(
    trace: Trace,
    model: Model | None,
    limits: Limits | None,
    rewards: Mapping[str, RewardFn],
    report: ReplayReport,
    turn_format: str | Format | None = None,
) -> Trace | None:
    try:
        replayed = await replay_trace(trace, model, limits, turn_format)
    except NotReplayableError as exc:
        report.skipped.append((trace.id, str(exc)))
        return None
    scored = score_trace(replayed, trace.task, rewards)
    report.scores.traces += 1
    report.scores.rewards.add_trace(scored, rewards)
    if model is None:
        difference = first_difference(trace, replayed)
        if difference is None:
            report.reproduced += 1
        else:
            report.diverged.append((trace.id, difference))
    else:
        results = [step.result for step in replayed.steps if step.result is not None]
        report.unrecorded_calls += sum(1 for result in results if result.error_kind == "not_recorded")
    common = [name for name in rewards if name in trace.rewards]
    same_version = [name for name in common if trace.rewards[name].version == scored.rewards[name].version]
    report.other_versions += len(common) - len(same_version)
    if any(scored.rewards[name].value != trace.rewards[name].value for name in same_version):
        report.changed.append(trace.id)
    return scored
