"""``sandbox replay``: re-run recorded episodes with their recorded tool results and no live server.

A trace holds every turn the model wrote and every tool result it got. Replaying it runs the same
episode loop (``run_episode``) with two stand-ins:

* :class:`ReplayModel` writes the recorded turns, with their recorded token counts and finish
  reasons, and ends the episode the way it ended (a full context, a model error);
* :class:`ReplayHub` lists the recorded tools and servers and answers each call with its recorded
  result.

The loop rebuilds the transcript (retry notes and tool messages included), so a replayed trace has
the original's messages, steps, answer and stop reason, and scores exactly as it did: rewards can be
changed and re-run over thousands of traces in seconds, deterministically.

With a live model instead (``--model M.gguf``), the model writes new turns against the recorded
tools: a call that was recorded (same tool, same arguments) gets its recorded result, any other an
``is_error`` result that says it was not recorded. Tool results then never change between runs.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rewards import RewardFn, score_trace
from sandbox._episode import Limits, run_episode
from sandbox._errors import ConfigError, ContextFullError, TraceFileError
from sandbox._models import Model, ModelRequest, ModelResponse
from sandbox._records import ModelInfo, ServerInfo, ToolResult, ToolSpec, Trace, iter_traces, write_trace

NOT_RECORDED = "this call was not recorded in the trace being replayed (tool {name!r}, arguments {arguments})"


class ReplayModel:
    """Writes a trace's recorded turns in order; then ends the episode as the trace ended."""

    def __init__(self, trace: Trace) -> None:
        self._trace = trace
        self._next = 0
        self.info: ModelInfo = trace.model

    def complete(self, request: ModelRequest) -> ModelResponse:
        steps = self._trace.steps
        if self._next < len(steps):
            step = steps[self._next]
            self._next += 1
            return ModelResponse(step.raw_text, step.finish_reason, step.usage, step.model_seconds)
        if self._trace.stop_reason == "context_full":
            raise ContextFullError(_recorded_message(self._trace.error))
        if self._trace.stop_reason == "model_error":
            kind, message = _split_error(self._trace.error)
            raise type(kind, (Exception,), {})(message)
        raise RuntimeError(f"trace {self._trace.id} has only {len(steps)} recorded turns")


class ReplayHub:
    """The recorded tools and servers of a trace; each call answered with its recorded result."""

    def __init__(self, trace: Trace) -> None:
        self._tools = list(trace.tools)
        self._servers = list(trace.servers)
        self._recorded = [(s.call.name, _key(s.call.arguments), s.result) for s in trace.steps if s.call]
        self._used: set[int] = set()
        self.unrecorded = 0

    def tools(self, servers: Sequence[str] | None = None) -> list[ToolSpec]:
        return list(self._tools)

    def server_info(self, servers: Sequence[str] | None = None) -> list[ServerInfo]:
        return list(self._servers)

    async def call(
        self,
        name: str,
        arguments: dict,
        *,
        servers: Sequence[str] | None = None,
        timeout: float | None = None,
    ) -> ToolResult:
        key = _key(arguments)
        for index, (recorded_name, recorded_key, result) in enumerate(self._recorded):
            if index not in self._used and recorded_name == name and recorded_key == key:
                self._used.add(index)
                if result is None:  # recorded without a result: the original episode never got one
                    break
                return result
        self.unrecorded += 1
        text = NOT_RECORDED.format(name=name, arguments=json.dumps(arguments, sort_keys=True))
        return ToolResult(text=text, is_error=True, error_kind="tool_error")


def check_replayable(trace: Trace) -> None:
    """Refuse, with the reason, a trace that cannot be re-run from its record."""
    if trace.steps and any(step.call is not None and step.result is None for step in trace.steps[:-1]):
        raise TraceFileError(
            f"trace {trace.id}: a tool call has no recorded result, so it cannot be replayed"
        )


async def replay_trace(trace: Trace, model: Model | None = None) -> Trace:
    """Re-run one trace's episode (see the module doc); the result names the original in ``replayed_from``."""
    check_replayable(trace)
    hub = ReplayHub(trace)
    replay_model = model or ReplayModel(trace)
    limits = _limits_that_end_like(trace) if model is None else Limits()
    started = time.perf_counter()
    replayed = await run_episode(
        trace.task, replay_model, hub, limits, mode=trace.mode, sampling=trace.sampling, sample=trace.sample
    )
    update = {"replayed_from": trace.id, "wall_seconds": time.perf_counter() - started}
    if model is None:  # the recorded turns took the recorded model time; the trace keeps its model
        update |= {"model": trace.model, "id": f"{trace.id}:replay"}
    return replayed.model_copy(update=update)


def _limits_that_end_like(trace: Trace) -> Limits:
    """Limits under which the loop stops where the recorded episode stopped, and for the same reason."""
    steps = len(trace.steps)
    if trace.stop_reason == "token_budget":
        return Limits(max_steps=steps + 1, max_completion_tokens=trace.completion_tokens)
    if trace.stop_reason in ("context_full", "model_error"):
        return Limits(max_steps=steps + 1, max_completion_tokens=trace.completion_tokens + 1)
    return Limits(max_steps=max(steps, 1), max_completion_tokens=trace.completion_tokens + 1)


def _key(arguments: dict) -> str:
    return json.dumps(arguments, sort_keys=True, ensure_ascii=False)


def _recorded_message(error: str | None) -> str:
    return error or "the context was full"


def _split_error(error: str | None) -> tuple[str, str]:
    kind, separator, message = (error or "").partition(": ")
    if not separator or not kind.isidentifier():
        return "ModelError", error or "the model failed"
    return kind, message


@dataclass
class ReplaySummary:
    """What a replay of a trace file did: how many traces, and how many scored as they were."""

    traces: int = 0
    same_rewards: int = 0
    changed: list[str] = field(default_factory=list)  # ids of traces whose rewards differ
    unrecorded_calls: int = 0  # calls a live model made that the trace had not recorded
    newer_versions: int = 0  # (trace, reward) pairs recorded by another version of the reward


async def replay_file(
    traces: Path,
    out: Path,
    rewards: Mapping[str, RewardFn],
    *,
    model: Model | None = None,
    overwrite: bool = False,
) -> ReplaySummary:
    """Replay every trace of ``traces`` into ``out``, each scored by ``rewards`` (see the module doc)."""
    if not overwrite and out.exists() and out.stat().st_size > 0:
        raise ConfigError(f"{out} already holds traces; pass --overwrite to replace it, or pick another -o")
    summary = ReplaySummary()
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8") as handle:
        for trace in iter_traces(traces):
            replayed = score_trace(await replay_trace(trace, model), trace.task, rewards)
            write_trace(handle, replayed)
            summary.traces += 1
            # a reward recorded by another version of itself may rightly score differently: not compared
            comparable = [
                name
                for name in rewards
                if name in trace.rewards
                and name in replayed.rewards
                and trace.rewards[name].version == replayed.rewards[name].version
            ]
            summary.newer_versions += len(rewards) - len(comparable)
            if all(trace.rewards[n].value == replayed.rewards[n].value for n in comparable):
                summary.same_rewards += 1
            else:
                summary.changed.append(trace.id)
            summary.unrecorded_calls += sum(
                1
                for step in replayed.steps
                if step.result is not None and "was not recorded" in step.result.text
            )
    if summary.traces == 0:
        raise TraceFileError(f"{traces}: no traces to replay")
    return summary
