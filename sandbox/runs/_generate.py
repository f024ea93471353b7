"""The one run pipeline: n samples of every task, each episode scored and appended as it finishes.

``sandbox generate`` writes a run folder (see ``_folder.py``) that loses nothing and resumes;
``sandbox run`` is the same pipeline with n = 1 writing one trace file. Each (task, sample) has its
own sampling seed derived from the run seed, the task id and the sample index, so a resumed pair
samples as it would have in the first run.

Episodes run concurrently: ``parallel`` workers on the event loop each take the next pending pair
(samples of one task next to each other, so a batched model sees their shared prompt together), run
its episode (the model's turn in a worker thread, tools on the loop), score it and append it.
Scoring runs one trace at a time in a worker thread: a judge model must not run on two threads.

What a run did is a :class:`RunSummary`; a :class:`RunEvents` listener (the CLI's progress bar) hears
of the start and of every trace. Nothing here renders.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import anyio

from rewards import RewardFn, score_trace
from sandbox.hub import ServerConfig, ToolHub
from sandbox.models import Model
from sandbox.records import RewardError, RewardTally, SandboxError, Task, Trace
from sandbox.runs._folder import (
    SERVERS_LOG,
    ModelRef,
    RunConfig,
    RunFolder,
    TraceFile,
    build_config,
    model_ref,
)
from sandbox.runs._spec import RunSpec, check_run_inputs, check_spec, open_model, run_sample


@dataclass
class RunSummary:
    """What a run did (this invocation) and where the whole run stands."""

    out: Path
    expected: int
    before: int  # pairs already written when this invocation started
    written: int = 0
    seconds: float = 0.0
    completion_tokens: int = 0
    episode_seconds: float = 0.0
    stops: Counter[str] = field(default_factory=Counter)
    rewards: RewardTally = field(default_factory=RewardTally)
    notes: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return self.before + self.written

    @property
    def tokens_per_second(self) -> float:
        return self.completion_tokens / self.seconds if self.seconds > 0 else 0.0

    def add(self, trace: Trace) -> None:
        self.written += 1
        self.completion_tokens += trace.completion_tokens
        self.episode_seconds += trace.wall_seconds
        self.stops[trace.stop_reason] += 1
        self.rewards.add_trace(trace)


class RunEvents(Protocol):
    """Hears what a run does: once when its pending work is known, then once per written trace."""

    def started(self, summary: RunSummary) -> None: ...

    def wrote(self, trace: Trace, summary: RunSummary) -> None: ...


class _Silent:
    def started(self, summary: RunSummary) -> None:
        pass

    def wrote(self, trace: Trace, summary: RunSummary) -> None:
        pass


async def generate(
    spec: RunSpec, *, events: RunEvents | None = None, model: Model | None = None
) -> RunSummary:
    """Run every pending (task, sample) of ``spec`` into its run folder or trace file.

    Everything is checked before a model or server starts. ``model`` replaces the model that
    ``spec`` names (tests pass a scripted one); it is not closed here.
    """
    events = events or _Silent()
    check_spec(spec)
    tasks, servers, rewards = check_run_inputs(spec)
    if model is None:
        identity = model_ref(spec)
    else:
        info = model.info
        identity = ModelRef(
            name=info.name, path=info.path, sha256=info.sha256, lora=info.lora, lora_sha256=info.lora_sha256
        )
    config = build_config(spec, tasks, servers, rewards, identity)
    sink: RunFolder | TraceFile
    if spec.layout == "file":
        sink = TraceFile(spec.out)
        if spec.resume:
            notes: list[str] = sink.load(identity.sha256, config.mode, config.sampling)
        else:
            sink.check(overwrite=spec.overwrite)
            notes = []
    else:
        sink = RunFolder(spec.out)
    own_model = model is None
    try:
        if isinstance(sink, RunFolder):
            if own_model and spec.ray is None and not (spec.resume and sink.holds_something()):
                # A new run has work to do: the model loads before the folder is made, so a model
                # file llama.cpp refuses leaves nothing behind (a resume reads the folder first:
                # with every pair done, no model is needed).
                sink.check(resume=spec.resume, overwrite=spec.overwrite)
                model = open_model(spec)
            notes = sink.open(config, resume=spec.resume, overwrite=spec.overwrite)
        pending = [(t, s) for t in tasks for s in range(spec.n) if (t.id, s) not in sink.done]
        summary = RunSummary(
            out=spec.out, expected=len(tasks) * spec.n, before=len(sink.done & _pairs(tasks, spec.n))
        )
        summary.rewards, summary.notes = sink.rewards, notes
        if pending and spec.ray is not None and model is None:
            events.started(summary)
            await _run_pending_on_ray(spec, config, pending, sink, summary, events)
        elif pending:
            model = model or open_model(spec)
            if isinstance(sink, TraceFile):
                sink.open()  # after the model loaded: a model that fails leaves no file behind
            events.started(summary)
            await _run_pending(spec, config, pending, model, servers, rewards, sink, summary, events)
        else:
            events.started(summary)
        return summary
    finally:
        try:
            if own_model and model is not None:
                await model.aclose()
        finally:
            sink.close()


async def _run_pending_on_ray(
    spec: RunSpec,
    config: RunConfig,
    pending: list[tuple[Task, int]],
    sink: RunFolder | TraceFile,
    summary: RunSummary,
    events: RunEvents,
) -> None:
    """The pending pairs on Ray workers (see ``_ray.py``); this process stays the one writer."""
    from sandbox.runs._ray import run_on_ray

    started = time.perf_counter()

    def on_trace(trace: Trace) -> None:
        sink.append(trace)
        summary.add(trace)
        summary.seconds = time.perf_counter() - started
        events.wrote(trace, summary)

    try:
        hosts = await run_on_ray(spec, config.sampling.model_dump_json(), config.mode, pending, on_trace)
    finally:
        summary.seconds = time.perf_counter() - started
    summary.notes.append(f"ran on {len(hosts)} Ray worker(s): {', '.join(sorted(set(hosts)))}")


def _pairs(tasks: Sequence[Task], n: int) -> set[tuple[str, int]]:
    return {(task.id, sample) for task in tasks for sample in range(n)}


async def _run_pending(
    spec: RunSpec,
    config: RunConfig,
    pending: list[tuple[Task, int]],
    model: Model,
    servers: Mapping[str, ServerConfig],
    rewards: Mapping[str, RewardFn],
    sink: RunFolder | TraceFile,
    summary: RunSummary,
    events: RunEvents,
) -> None:
    limits = spec.limits
    scoring = anyio.CapacityLimiter(1)
    queue = iter(pending)
    started = time.perf_counter()

    # A run folder keeps its servers' stderr (servers.log, appended by each invocation); a trace
    # file's run leaves it to the hub (the temporary folder, removed unless a server failed).
    log = spec.out / SERVERS_LOG if isinstance(sink, RunFolder) else None
    async with ToolHub(
        servers, call_timeout=spec.call_timeout, start_timeout=spec.start_timeout, log_path=log
    ) as hub:

        async def worker() -> None:
            for task, sample in queue:  # one shared iterator: each pair goes to one worker
                trace = await run_sample(
                    task,
                    sample,
                    model,
                    hub,
                    limits,
                    mode=config.mode,
                    sampling=config.sampling,
                    turn_format=config.turn_format,
                )
                trace = await anyio.to_thread.run_sync(score_trace, trace, task, rewards, limiter=scoring)
                sink.append(trace)
                summary.add(trace)
                summary.seconds = time.perf_counter() - started
                events.wrote(trace, summary)

        try:
            async with anyio.create_task_group() as group:
                for _ in range(min(spec.parallel, len(pending))):
                    group.start_soon(worker)
        except BaseExceptionGroup as errors:
            raise _first_error(errors) from None
        finally:
            summary.seconds = time.perf_counter() - started


def _first_error(errors: BaseExceptionGroup) -> BaseException:
    """The error to report from a failed worker pool: a person's error (bad config, a crashing
    reward) before anything else; a lone error as itself."""
    leaves: list[BaseException] = []

    def collect(group: BaseExceptionGroup) -> None:
        for error in group.exceptions:
            if isinstance(error, BaseExceptionGroup):
                collect(error)
            else:
                leaves.append(error)

    collect(errors)
    for kind in (RewardError, SandboxError, KeyboardInterrupt):
        for leaf in leaves:
            if isinstance(leaf, kind):
                return leaf
    return leaves[0] if len(leaves) == 1 else errors
