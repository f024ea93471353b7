"""``improve(options) -> ImproveResult``: the rounds of ``sandbox improve``, stage by stage.

The improve folder::

    state.json            the options and every finished stage's result (written after each stage)
    report.json           the report (``_report``), rewritten after each round
    rewards.png           every held-out reward per round
    heldout-demos/        the oracle's demonstrations of the held-out tasks (for the held-out loss)
    base/heldout/         the base model on the held-out tasks (a run folder, with report.html)
    round-K/samples/      n samples of every train task with the current model (a run folder)
    round-K/demos/        demonstrations of the train tasks where no sample was kept
    round-K/kept.jsonl    the traces trained on: this round's kept samples and demonstrations, and
                          every earlier round's (each task's samples renumbered 0, 1, ...)
    round-K/data/         their ``sft`` export (``sandbox export``)
    round-K/train/        the training run (``sandbox train``): adapter.gguf
    round-K/heldout/      the tuned model on the held-out tasks, same seeds as the base

Round K samples with the base model and round K-1's adapter (round 1: the base alone) and trains
a fresh adapter on the base, on everything kept so far. Every stage runs in one turn format, chosen
once from ``--format`` and the base model's chat template (:func:`improve_format`): samples,
demonstrations and evaluations are written in it and the ``sft`` export renders them as the model
saw them, so the model trains in the format it runs in. ``state.json`` and ``report.json`` record
it (``format``); a ``--resume`` that would run another format is refused. Every stage's result goes
into ``state.json`` when it finishes; ``resume`` skips finished stages, a run folder a kill left
half-written continues where it stopped (``sandbox generate --resume``) and an unfinished training
run from its newest checkpoint (``sandbox train --resume``, one every ``save_steps``). A first
Ctrl-C stops any stage as ``sandbox run`` stops (episodes through ``run_stoppable``, training after
its current step with a checkpoint) and ends in ``KeyboardInterrupt``. The whole folder is held by
one process at a time.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import MISSING, asdict, dataclass, fields, replace
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from sandbox.datasets import ExportOptions, export_run, loss_file
from sandbox.improve._options import (
    TASKS_FOLDER,
    ImproveError,
    ImproveOptions,
    check_options,
    family_tasks,
)
from sandbox.improve._report import (
    PLOT_FILE,
    REPORT_FILE,
    STATE_FILE,
    evaluate_traces,
    is_no_tool,
    write_plot,
)
from sandbox.records import (
    SandboxError,
    Task,
    Trace,
    code_version,
    lock_folder,
    read_traces,
    write_atomic,
    write_trace,
)
from sandbox.runs import TRACES_FILE, RunSpec, generate, run_stoppable, write_demos
from sandbox.train import ResumeRefused, TrainOptions, TrainProgress, train
from sandbox.turns import Format, choose_format
from sandbox.view import write_report

ProgressFn = Callable[[str], None]
ADAPTER = Path("train") / "adapter.gguf"
TRAIN_CONFIG = "config.json"  # a training run folder's first file (sandbox.train)
VIEW_FILE = "report.html"
# Options that may change between a run and its --resume: they change how fast, not what.
RESUMABLE = ("rounds", "resume", "overwrite", "threads", "parallel", "start_timeout", "save_steps")


@dataclass(frozen=True)
class ImproveResult:
    """Where an improve run's files are, and its report as written to ``report.json``."""

    out: Path
    report_path: Path
    plot: Path
    views: tuple[Path, ...]
    report: dict[str, Any]


def improve(options: ImproveOptions, progress: ProgressFn | None = None) -> ImproveResult:
    """Run (or with ``resume`` continue) the rounds of ``options`` in ``options.out`` (module doc).

    The options and both task files are checked before anything runs, each problem in one line.
    """
    say = progress or (lambda _line: None)
    options = family_tasks(options)
    train_tasks, heldout_tasks = check_options(options)
    fmt = improve_format(options)
    descriptor, state = _open_folder(options, fmt)
    try:
        run = _Run(options, state, say, {t.id: t for t in train_tasks}, {t.id: t for t in heldout_tasks})
        return run.all_rounds()
    finally:
        os.close(descriptor)


def improve_format(options: ImproveOptions) -> Format:
    """The turn format of every stage: ``options.turn_format`` against the base model's chat template
    (read from the GGUF's metadata; no model is loaded). One line when it cannot be had."""
    from sandbox.models import default_model_path, read_chat_template

    try:
        return choose_format(options.turn_format, read_chat_template(options.model or default_model_path()))
    except SandboxError as exc:
        raise ImproveError(str(exc)) from exc


# Options with a default (added after the first runs), as a fingerprint writes them.
_DEFAULTS = {
    f.name: f.default
    for f in fields(ImproveOptions)
    if f.default is not MISSING and not isinstance(f.default, Path) and f.name not in RESUMABLE
}


def _fingerprint(options: ImproveOptions) -> dict[str, Any]:
    settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(options).items()}
    for name in RESUMABLE:
        settings.pop(name, None)
    settings.pop("out", None)
    for name in ("tasks", "heldout"):
        path = getattr(options, name)
        settings[f"{name}_sha256"] = hashlib.sha256(path.read_bytes()).hexdigest() if path else None
    return settings


def _open_folder(options: ImproveOptions, fmt: Format) -> tuple[int, dict[str, Any]]:
    out = options.out
    if out.exists() and not out.is_dir():
        raise ImproveError(f"-o {out} is a file; an improve run is a folder")
    state_path = out / STATE_FILE
    # OUT/tasks/ holds the tasks --family made for this run: not another run's files.
    made = {TASKS_FOLDER} if options.family is not None else set()
    if out.exists() and any(c.name not in made for c in out.iterdir()) and not state_path.exists():
        raise ImproveError(f"{out} holds files but no improve run ({STATE_FILE}); pick another -o")
    out.mkdir(parents=True, exist_ok=True)
    descriptor = lock_folder(out)
    if descriptor is None:
        raise ImproveError(f"another sandbox improve is running in {out}; wait for it or stop it")
    try:
        fingerprint = _fingerprint(options)
        if state_path.exists() and options.resume:
            state = json.loads(state_path.read_text(encoding="utf-8"))
            # An option added since the run started counts as its default there.
            before = {**_DEFAULTS, **state["options"]}
            changed = sorted(
                key for key in set(fingerprint) | set(before) if fingerprint.get(key) != before.get(key)
            )
            if changed:
                raise ImproveError(
                    f"{out} was started with other settings ({', '.join(changed)}); "
                    "--resume continues the same run: pass the same options, or --overwrite"
                )
            started_in = state.get("format", "tags")  # a run from before formats ran the tag format
            if started_in != fmt.label:
                raise ImproveError(
                    f"{out} was started in the turn format {started_in}, and these options run "
                    f"{fmt.label} (the model's chat template changed?); --resume continues the same run: "
                    "pass the same --format and --model, or --overwrite"
                )
            return descriptor, state
        if state_path.exists() and not options.overwrite:
            raise ImproveError(f"{out} holds an improve run; pass --resume to continue it or --overwrite")
        for child in (c for c in out.iterdir() if c.name not in made):
            shutil.rmtree(child) if child.is_dir() else child.unlink()
        state = {"options": fingerprint, "format": fmt.label, "stages": {}}
        write_atomic(state_path, json.dumps(state, indent=2) + "\n")
        return descriptor, state
    except BaseException:
        os.close(descriptor)
        raise


@dataclass
class _Run:
    options: ImproveOptions
    state: dict[str, Any]
    say: ProgressFn
    train_tasks: dict[str, Task]
    heldout_tasks: dict[str, Task]

    @property
    def out(self) -> Path:
        return self.options.out

    @property
    def turn_format(self) -> str:
        """The label of the run's turn format (every stage's ``RunSpec.turn_format``)."""
        return str(self.state.get("format", "tags"))

    @property
    def train_file(self) -> Path:
        assert self.options.tasks is not None  # check_options saw to it
        return self.options.tasks

    @property
    def heldout_file(self) -> Path:
        assert self.options.heldout is not None
        return self.options.heldout

    # -- the stages ------------------------------------------------------------------------------

    def stage(self, key: str, work: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """``work``'s result, from ``state.json`` when the stage finished before, else run now."""
        done = self.state["stages"].get(key)
        if done is not None:
            self.say(f"{key}: finished before ({done['seconds']:.0f} s), kept")
            return dict(done)
        self.say(f"{key} ...")
        started = time.perf_counter()
        result = work()
        result["seconds"] = round(time.perf_counter() - started, 2)
        self.state["stages"][key] = result
        write_atomic(self.out / STATE_FILE, json.dumps(self.state, indent=2) + "\n")
        self.say(f"{key}: done in {result['seconds']:.0f} s")
        return result

    def all_rounds(self) -> ImproveResult:
        base = self.stage("base/evaluate", partial(self.evaluate, self.out / "base" / "heldout", None))
        self.stage("heldout-demos", self.heldout_demos)
        self.stage("base/loss", partial(self.heldout_loss, None))
        views = [self.out / "base" / "heldout" / VIEW_FILE]
        del base
        for number in range(1, self.options.rounds + 1):
            folder = self.out / f"round-{number}"
            previous = self.out / f"round-{number - 1}" / ADAPTER if number > 1 else None
            key = f"round-{number}"
            self.stage(f"{key}/sample", partial(self.sample, folder, previous, number))
            self.stage(f"{key}/select", partial(self.select, folder, number))
            self.stage(f"{key}/export", partial(self.export, folder))
            self.stage(f"{key}/train", partial(self.train, folder))
            self.stage(f"{key}/evaluate", partial(self.evaluate, folder / "heldout", folder / ADAPTER))
            self.stage(f"{key}/loss", partial(self.heldout_loss, folder / ADAPTER))
            views.append(folder / "heldout" / VIEW_FILE)
            self.write_report()
        report = self.write_report()
        return ImproveResult(self.out, self.out / REPORT_FILE, self.out / PLOT_FILE, tuple(views), report)

    def spec(
        self, tasks: Path, out: Path, *, n: int, temperature: float, seed: int, lora: Path | None
    ) -> RunSpec:
        options = self.options
        return RunSpec(
            tasks=tasks,
            servers=options.servers,
            out=out,
            model=options.model,
            lora=lora,
            n=n,
            parallel=options.parallel,
            resume=True,  # a run folder a kill left half-written carries on
            rewards=options.rewards,
            temperature=temperature,
            max_tokens=options.max_tokens,
            token_budget=options.token_budget,
            max_steps=options.max_steps,
            seed=seed,
            n_ctx=options.n_ctx,
            threads=options.threads,
            start_timeout=options.start_timeout,
            turn_format=self.turn_format,
        )

    def evaluate(self, out: Path, lora: Path | None) -> dict[str, Any]:
        options = self.options
        spec = self.spec(
            self.heldout_file,
            out,
            n=options.eval_n,
            temperature=options.eval_temperature,
            seed=options.seed,
            lora=lora,
        )
        summary = run_stoppable(partial(generate, spec), say=self.say)
        traces = read_traces(out / TRACES_FILE)
        write_report(out, out / VIEW_FILE)
        evaluation = evaluate_traces(traces, self.heldout_tasks).to_json()
        return {**evaluation, "tokens_per_second": round(summary.tokens_per_second, 1)}

    def heldout_demos(self) -> dict[str, Any]:
        spec = self.spec(
            self.heldout_file, self.out / "heldout-demos", n=1, temperature=0.0, seed=0, lora=None
        )
        summary = run_stoppable(partial(write_demos, replace(spec, resume=True)), say=self.say)
        return {"traces": summary.total}

    def heldout_loss(self, lora: Path | None) -> dict[str, Any]:
        losses = loss_file(
            self.out / "heldout-demos" / TRACES_FILE,
            self.options.model,
            None,
            None,
            None,
            n_ctx=self.options.n_ctx,
            lora=lora,
        )
        scored = [r for r in losses if r.loss is not None]
        tokens = sum(r.tokens for r in scored)
        mean = sum(r.loss * r.tokens for r in scored if r.loss is not None) / tokens if tokens else None
        return {"loss": mean, "tokens": tokens, "traces": len(scored)}

    def sample(self, folder: Path, lora: Path | None, number: int) -> dict[str, Any]:
        options = self.options
        spec = self.spec(
            self.train_file,
            folder / "samples",
            n=options.n,
            temperature=options.temperature,
            seed=options.seed + number,
            lora=lora,
        )
        summary = run_stoppable(partial(generate, spec), say=self.say)
        traces = read_traces(folder / "samples" / TRACES_FILE)
        evaluation = evaluate_traces(traces, self.train_tasks).to_json()
        return {**evaluation, "tokens_per_second": round(summary.tokens_per_second, 1)}

    def keeps(self, trace: Trace) -> bool:
        """A sample is kept when it ended with an answer and its reward reaches the threshold."""
        score = trace.rewards.get(self.options.reward)
        value = score.value if score is not None else None
        return trace.stop_reason == "answer" and value is not None and value >= self.options.threshold

    def select(self, folder: Path, number: int) -> dict[str, Any]:
        samples = read_traces(folder / "samples" / TRACES_FILE)
        if samples and self.options.reward not in samples[0].rewards:
            raise ImproveError(f"--reward {self.options.reward!r} is not among the run's rewards")
        kept = [trace for trace in samples if self.keeps(trace)]
        missing = sorted(set(self.train_tasks) - {trace.task_id for trace in kept})
        demos: list[Trace] = []
        if missing and self.options.demos:
            spec = self.spec(self.train_file, folder / "demos", n=1, temperature=0.0, seed=0, lora=None)
            run_stoppable(partial(write_demos, replace(spec, only=tuple(missing), resume=True)), say=self.say)
            demos = read_traces(folder / "demos" / TRACES_FILE)
        earlier = read_traces(self.out / f"round-{number - 1}" / "kept.jsonl") if number > 1 else []
        chosen, dropped = cap_direct([*earlier, *kept, *demos], self.train_tasks, self.options.direct_share)
        with (folder / "kept.jsonl").open("w", encoding="utf-8") as handle:
            for trace in distinct_samples(chosen):
                write_trace(handle, trace)
        return {
            "dropped_direct": dropped,
            "samples": len(samples),
            "kept": len(kept),
            "tasks_with_kept": len({trace.task_id for trace in kept}),
            "tasks": len(self.train_tasks),
            "demos": len(demos),
            "earlier": len(earlier),
        }

    def export(self, folder: Path) -> dict[str, Any]:
        report = export_run(
            ExportOptions(source=folder / "kept.jsonl", format="sft", out=folder / "data", overwrite=True)
        )
        return {"rows": report.rows.get("train", 0), "skipped": dict(report.skipped)}

    def train(self, folder: Path) -> dict[str, Any]:
        options = self.options
        # A new adapter: an evaluation a kill left half-written was of the old one.
        shutil.rmtree(folder / "heldout", ignore_errors=True)
        run = TrainOptions(
            data=folder / "data",
            out=folder / "train",
            model=options.model,
            chat_template=options.chat_template,
            steps=options.steps,
            epochs=options.epochs,
            learning_rate=options.learning_rate,
            rank=options.rank,
            alpha=options.alpha,
            batch_size=options.batch_size,
            gradient_accumulation=options.gradient_accumulation,
            seed=options.seed,
            save_steps=options.save_steps,
        )
        key = f"{folder.name}/train"

        def progress(event: TrainProgress) -> None:
            if event.phase == "loading" and event.message.startswith("resuming"):
                self.say(f"{key}: {event.message}")

        # A training run a kill or Ctrl-C left behind continues from its newest checkpoint.
        if (run.out / TRAIN_CONFIG).is_file():
            try:
                result = train(replace(run, resume=True), progress=progress)
            except ResumeRefused as exc:
                self.say(f"{key}: {exc}; training again from the start")
                result = train(replace(run, overwrite=True), progress=progress)
        else:
            result = train(replace(run, overwrite=True), progress=progress)
        if result.interrupted:
            raise KeyboardInterrupt  # the checkpoint is written; --resume continues from it
        return {
            "rows": result.rows,
            "steps": result.steps,
            "tokens": result.tokens,
            "train_seconds": round(result.seconds, 2),
            "tokens_per_second": round(result.tokens_per_second, 1),
            "first_loss": result.first_loss,
            "last_loss": result.last_loss,
            "max_length": result.max_length,
            "device": result.device,
            "precision": result.precision,
            "peak_rss_mb": round(result.peak_rss_mb),
            "adapter": str(result.adapter),
            "resumed_from": result.resumed_from,
        }

    # -- the report ------------------------------------------------------------------------------

    def with_families(self, evaluation: dict[str, Any], folder: Path) -> dict[str, Any]:
        """``evaluation`` with its per-family outcome, read from its traces when the stage was
        finished by a version that did not write it."""
        if "families" in evaluation or not (folder / TRACES_FILE).is_file():
            return evaluation
        traces = read_traces(folder / TRACES_FILE)
        return {**evaluation, "families": evaluate_traces(traces, self.heldout_tasks).families}

    def write_report(self) -> dict[str, Any]:
        stages = self.state["stages"]
        base_eval = self.with_families(stages["base/evaluate"], self.out / "base" / "heldout")
        base = {
            "heldout": base_eval,
            "heldout_loss": stages["base/loss"]["loss"],
            "seconds": {"evaluate": base_eval["seconds"], "loss": stages["base/loss"]["seconds"]},
        }
        rounds = []
        for number in range(1, self.options.rounds + 1):
            key = f"round-{number}"
            names = ("sample", "select", "export", "train", "evaluate", "loss")
            if f"{key}/loss" not in stages:
                break
            got = {name: stages[f"{key}/{name}"] for name in names}
            got["evaluate"] = self.with_families(got["evaluate"], self.out / key / "heldout")
            tuned = got["evaluate"]["rewards"]
            rounds.append(
                {
                    "round": number,
                    "samples": got["sample"],
                    "selection": got["select"],
                    "rows": got["export"]["rows"],
                    "train": got["train"],
                    "heldout": got["evaluate"],
                    "heldout_loss": got["loss"]["loss"],
                    "gain": {
                        n: round(v - base_eval["rewards"][n], 4)
                        for n, v in tuned.items()
                        if n in base_eval["rewards"]
                    },
                    "seconds": {name: got[name]["seconds"] for name in names},
                }
            )
        report = {
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "code_version": code_version(),
            "machine": {"cpus": os.cpu_count(), "load_average": [round(x, 2) for x in os.getloadavg()]},
            "options": self.state["options"],
            "format": self.turn_format,
            "train_tasks": len(self.train_tasks),
            "heldout_tasks": len(self.heldout_tasks),
            "base": base,
            "rounds": rounds,
            "seconds": round(sum(stage["seconds"] for stage in stages.values()), 1),
        }
        write_atomic(self.out / REPORT_FILE, json.dumps(report, indent=2) + "\n")
        write_plot(report, self.out / PLOT_FILE)
        return report


def distinct_samples(traces: list[Trace]) -> list[Trace]:
    """``traces`` with each task's samples numbered 0, 1, ... in order. Rounds (and a round's samples
    and demonstrations) reuse sample numbers, and an export reads one trace per (task, sample): kept
    as they were, a later round's traces of a task would all be dropped as repeats of the first
    round's. The trace ids stay, so each row still names the trace it came from."""
    counts: dict[str, int] = {}
    numbered = []
    for trace in traces:
        index = counts.get(trace.task_id, 0)
        counts[trace.task_id] = index + 1
        numbered.append(trace if trace.sample == index else trace.model_copy(update={"sample": index}))
    return numbered


def cap_direct(traces: list[Trace], tasks: dict[str, Task], share: float | None) -> tuple[list[Trace], int]:
    """``traces`` with no-tool ones (a task with neither ideal calls nor a solution) dropped, last
    first, until they are at most ``share`` of what is left, and how many were dropped. ``None``:
    all kept. Earlier rounds' traces come first in ``traces``, so they are the last to go."""
    if share is None:
        return traces, 0
    direct = [i for i, t in enumerate(traces) if t.task_id in tasks and is_no_tool(tasks[t.task_id])]
    others = len(traces) - len(direct)
    allowed = int(share * others / (1 - share))  # direct / (direct + others) <= share
    drop = set(direct[allowed:])
    return [t for i, t in enumerate(traces) if i not in drop], len(drop)
