"""``sandbox generate``: n samples of every task, scored, appended to a run folder that loses nothing.

A run folder holds:

* ``config.json`` -- written before the first episode: the model (file sha256), sampling, n, the
  servers, the rewards with their versions, the code version and the task file's sha256.
* ``traces.jsonl`` -- one trace per line, appended as each episode finishes, flushed and fsynced.
* ``traces.jsonl.partial-N`` -- bytes of a half-written last line that a resume cut off (kept, never
  silently dropped).

``--resume`` checks that the run's settings match ``config.json`` (naming the fields that differ),
cuts a half-written last line, and runs only the (task, sample) pairs not yet in ``traces.jsonl``.
Each pair has its own sampling seed derived from the run seed, the task id and the sample index, so
a resumed pair samples as it would have in the first run.

Episodes run concurrently: ``parallel`` workers on the event loop each take the next pending pair
(samples of one task next to each other, so a batched model sees their shared prompt together),
run its episode (the model's turn in a worker thread, tools on the loop), score it and append it.
Scoring runs one trace at a time in a worker thread: a judge model must not run on two threads.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import math
import os
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from rich.console import Console
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

from rewards import RewardError, RewardFn, score_trace
from sandbox._episode import Limits, Mode, run_episode
from sandbox._errors import ConfigError, SandboxError, TraceFileError
from sandbox._hub import ServerConfig, ToolHub
from sandbox._models import (
    MIN_COMPLETION_TOKENS,
    LlamaModel,
    Model,
    check_model_file,
    default_model_path,
    file_sha256,
)
from sandbox._records import ModelInfo, Sampling, Task, Trace, _describe, write_trace
from sandbox._run import HttpModelOptions, check_run_inputs, open_http_model
from sandbox._version import code_version

CONFIG_FILE = "config.json"
TRACES_FILE = "traces.jsonl"
PARTIAL_SUFFIX = ".partial-"
CONFIG_VERSION = 1
# Seeds stay below 2**31 so that the per-step offsets run_episode adds fit llama.cpp's uint32 seed.
SEED_BITS = 31


@dataclass(frozen=True)
class GenerateOptions:
    """Everything ``sandbox generate`` is told (defaults: the seed document's n = 10, temperature
    0.8, max_tokens 8192, bounded by the context)."""

    tasks: Path
    servers: Path
    out: Path  # the run folder
    model: Path | None = None
    n: int = 10
    parallel: int = 1
    resume: bool = False
    overwrite: bool = False
    mode: Mode = "constrained"
    rewards: str = "all"
    judge: Path | None = None
    temperature: float = 0.8
    top_p: float = 1.0
    max_tokens: int = 8192
    token_budget: int = 8192
    max_steps: int = 6
    seed: int = 0
    n_ctx: int = 4096
    n_gpu_layers: int = -1
    call_timeout: float = 30.0
    only: tuple[str, ...] = ()
    http: HttpModelOptions | None = None
    # Ray: an address for ray.init ("local" starts a private instance), workers (actors), and the CPUs
    # each worker reserves; ``parallel`` then counts episodes per worker.
    ray: str | None = None
    ray_workers: int = 1
    ray_worker_cpus: float = 1.0
    ray_cpus: int | None = None  # CPUs of a "local" instance (default: all)
    lora: Path | None = None  # a LoRA adapter GGUF on the llama.cpp model


def derive_seed(run_seed: int, task_id: str, sample: int) -> int:
    """The sampling seed of one (task, sample): stable across processes, resumes and machines."""
    digest = hashlib.sha256(f"{run_seed}\x00{task_id}\x00{sample}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % (1 << SEED_BITS)


# --------------------------------------------------------------------------- config


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ModelRef(_Record):
    """Which model wrote a run: a GGUF file by its sha256, or a model server by URL and name."""

    name: str = ""
    path: str = ""
    sha256: str = ""
    base_url: str | None = None
    api_model: str | None = None
    lora: str = ""  # a LoRA adapter GGUF on the model, and its sha256
    lora_sha256: str = ""


class FileRef(_Record):
    path: str
    sha256: str


class ServerEntry(_Record):
    """One configured server as a run used it. Environment values are not written, only their names
    (they may hold keys); ``sha256`` covers the whole entry, values included."""

    command: str | None = None
    args: list[str] = Field(default_factory=list)
    env: list[str] = Field(default_factory=list)
    cwd: str | None = None
    url: str | None = None
    sha256: str


class RunConfig(_Record):
    """``config.json`` of a run folder."""

    config_version: int = CONFIG_VERSION
    created_at: str
    code_version: str
    model: ModelRef
    n_ctx: int
    sampling: Sampling  # ``seed`` is the run seed; each (task, sample) derives its own
    n: int
    mode: Mode
    max_steps: int
    token_budget: int
    call_timeout: float
    tasks: FileRef
    task_ids: list[str]
    servers_file: str
    servers: dict[str, ServerEntry]
    rewards: dict[str, str]  # name -> version
    judge: FileRef | None = None
    parallel: int = 1


# Fields that do not change what a trace is: a resume may change them.
_FREE_ON_RESUME = {
    "created_at",
    "code_version",
    "parallel",
    "call_timeout",
    "servers_file",
    "model.name",
    "model.path",
    "model.lora",
    "tasks.path",
    "judge.path",
}


def config_differences(old: RunConfig, new: RunConfig) -> list[str]:
    """``field (old -> new)`` for every field that a resume may not change."""
    before, after = _flatten(old.model_dump(mode="json")), _flatten(new.model_dump(mode="json"))
    differences = []
    for key in sorted(set(before) | set(after)):
        if key in _FREE_ON_RESUME or any(key.startswith(free + ".") for free in _FREE_ON_RESUME):
            continue
        if before.get(key) != after.get(key):
            differences.append(f"{key} ({_short(before.get(key))} -> {_short(after.get(key))})")
    return differences


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, Mapping) and value:
        flat: dict[str, Any] = {}
        for key, item in value.items():
            flat.update(_flatten(item, f"{prefix}{key}."))
        return flat
    return {prefix.rstrip("."): value}


def _short(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."


def build_config(
    options: GenerateOptions,
    tasks: Sequence[Task],
    servers: Mapping[str, ServerConfig],
    rewards: Mapping[str, RewardFn],
    model: ModelRef,
) -> RunConfig:
    return RunConfig(
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        code_version=code_version(),
        model=model,
        n_ctx=options.n_ctx,
        sampling=run_sampling(options),
        n=options.n,
        mode=options.mode,
        max_steps=options.max_steps,
        token_budget=options.token_budget,
        call_timeout=options.call_timeout,
        tasks=FileRef(path=str(options.tasks), sha256=file_sha256(options.tasks)),
        task_ids=[task.id for task in tasks],
        servers_file=str(options.servers),
        servers=_server_entries(options.servers, servers),
        rewards=reward_versions(rewards),
        judge=None
        if options.judge is None
        else FileRef(path=str(options.judge), sha256=file_sha256(options.judge)),
        parallel=options.parallel,
    )


def run_sampling(options: GenerateOptions) -> Sampling:
    """The run's sampling; a turn never asks for more tokens than a local model's context holds."""
    max_tokens = options.max_tokens if options.http is not None else min(options.max_tokens, options.n_ctx)
    return Sampling(
        temperature=options.temperature, top_p=options.top_p, max_tokens=max_tokens, seed=options.seed
    )


def model_ref(options: GenerateOptions) -> ModelRef:
    """The model's identity, read before the model is loaded (so a bad resume fails fast)."""
    if options.http is not None:
        return ModelRef(
            name=options.http.model or "", base_url=options.http.base_url, api_model=options.http.model
        )
    path = check_model_file(options.model if options.model is not None else default_model_path())
    ref = ModelRef(name=path.stem, path=str(path), sha256=file_sha256(path))
    if options.lora is not None:
        ref = ref.model_copy(update={"lora": str(options.lora), "lora_sha256": _lora_sha256(options.lora)})
    return ref


def _lora_sha256(path: Path) -> str:
    if not path.is_file():
        raise ConfigError(f"LoRA adapter not found: {path}")
    return file_sha256(path)


def _server_entries(path: Path, servers: Mapping[str, ServerConfig]) -> dict[str, ServerEntry]:
    raw = json.loads(path.read_text(encoding="utf-8"))["mcpServers"]  # load_config already checked it
    entries = {}
    for name in servers:
        entry = raw[name]
        digest = hashlib.sha256(json.dumps(entry, sort_keys=True).encode()).hexdigest()
        entries[name] = ServerEntry(
            command=entry.get("command"),
            args=list(entry.get("args", [])),
            env=sorted(entry.get("env", {})),
            cwd=entry.get("cwd"),
            url=entry.get("url"),
            sha256=digest,
        )
    return entries


def reward_versions(rewards: Mapping[str, RewardFn]) -> dict[str, str]:
    """Each reward's version. A reward states its version only in the verdicts it returns, so each
    one scores a probe trace with nothing to judge (rewards are pure functions; a reward that cannot
    score it still names its version). A reward that fails on the probe is recorded as "unknown"."""
    probe_task = Task(id="version-probe", prompt="")
    probe = Trace(
        id="version-probe",
        task_id=probe_task.id,
        task=probe_task,
        model=ModelInfo(name="version-probe"),
        stop_reason="answer",
        final_answer="",
    )
    versions = {}
    for name, reward in rewards.items():
        stated = getattr(reward, "version", None)
        if isinstance(stated, str):
            versions[name] = stated
            continue
        try:
            versions[name] = reward(probe, probe_task).version
        except Exception:  # the reward's real failures surface, named, when it scores real traces
            versions[name] = "unknown"
    return versions


# --------------------------------------------------------------------------- the trace file


class _RewardValue(BaseModel):
    model_config = ConfigDict(extra="ignore")
    value: float | None = None


class _TraceKey(BaseModel):
    """The part of a trace line a resume needs."""

    model_config = ConfigDict(extra="ignore")
    task_id: str
    sample: int = 0
    rewards: dict[str, _RewardValue] = Field(default_factory=dict)


def complete_lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """``(line number, line)`` for each newline-terminated, non-blank line; a last line without its
    newline (a write cut short) is left out."""
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            if line.endswith(b"\n") and line.strip():
                yield number, line


def partial_tail(path: Path) -> int:
    """How many bytes follow the last newline of ``path`` (a half-written last line), 0 if none."""
    size = path.stat().st_size
    if size == 0:
        return 0
    with path.open("rb") as handle:
        position, block = size, 1 << 16
        while position > 0:
            start = max(0, position - block)
            handle.seek(start)
            chunk = handle.read(position - start)
            newline = chunk.rfind(b"\n")
            if newline != -1:
                return size - (start + newline + 1)
            position = start
    return size


def cut_partial_tail(path: Path) -> Path | None:
    """Move a half-written last line out of ``path`` into ``path.partial-N`` and truncate ``path`` to
    its last complete line. Returns the side file, or None when the file ends cleanly."""
    tail = partial_tail(path)
    if tail == 0:
        return None
    numbers = [int(p.name.rsplit("-", 1)[1]) for p in path.parent.glob(path.name + PARTIAL_SUFFIX + "*")]
    side = path.with_name(f"{path.name}{PARTIAL_SUFFIX}{max(numbers, default=0) + 1}")
    with path.open("r+b") as handle:
        size = handle.seek(0, os.SEEK_END)
        handle.seek(size - tail)
        side.write_bytes(handle.read())
        _fsync_path(side)
        handle.truncate(size - tail)
        handle.flush()
        os.fsync(handle.fileno())
    return side


def read_run_traces(path: Path) -> Iterator[Trace]:
    """The traces of a trace file, skipping a half-written last line, naming the line of a bad one."""
    for number, line in complete_lines(path):
        try:
            yield Trace.model_validate_json(line)
        except ValidationError as exc:
            raise TraceFileError(f"{path}:{number}: not a valid trace: {_describe(exc)}") from exc


def run_trace_file(path: Path) -> Path:
    """The trace file of a run folder (its ``traces.jsonl``), or ``path`` itself when it is a file."""
    if path.is_dir():
        traces = path / TRACES_FILE
        if not traces.exists():
            raise ConfigError(f"{path} is a folder without {TRACES_FILE}: not a run folder")
        return traces
    if not path.exists():
        raise ConfigError(f"no run folder or trace file at {path}")
    return path


@dataclass
class RewardMeans:
    """Running sums of each reward's non-null values."""

    totals: dict[str, float] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)

    def add(self, rewards: Mapping[str, float | None]) -> None:
        for name, value in rewards.items():
            self.totals.setdefault(name, 0.0)
            self.counts.setdefault(name, 0)
            if value is not None and math.isfinite(value):
                self.totals[name] += value
                self.counts[name] += 1

    def means(self) -> dict[str, float | None]:
        return {n: (self.totals[n] / self.counts[n] if self.counts[n] else None) for n in sorted(self.totals)}


@dataclass
class RunFolder:
    """A run folder: its config, and the trace file appended one fsynced line at a time."""

    path: Path
    done: set[tuple[str, int]] = field(default_factory=set)
    duplicates: int = 0
    rewards: RewardMeans = field(default_factory=RewardMeans)
    partial: Path | None = None  # where a cut half-written line went
    _handle: Any = None
    _lock_fd: int | None = None

    @property
    def config_path(self) -> Path:
        return self.path / CONFIG_FILE

    @property
    def traces_path(self) -> Path:
        return self.path / TRACES_FILE

    def open(self, config: RunConfig, *, resume: bool, overwrite: bool) -> list[str]:
        """Check the folder against ``config``, write the config, and open the trace file.

        Returns notes for the person running it (a new run under --resume, a cut line, ...).
        """
        notes: list[str] = []
        if resume and overwrite:
            raise ConfigError("--resume and --overwrite exclude each other")
        if self.path.exists() and not self.path.is_dir():
            raise ConfigError(f"--out {self.path} is a file; a run folder is a directory")
        existing = self.path.exists() and any(self.path.iterdir())
        self.path.mkdir(parents=True, exist_ok=True)
        self._lock()
        if existing and resume:
            self._load(config, notes)
        elif existing and not overwrite:
            raise ConfigError(
                f"run folder {self.path} is not empty; pass --resume to continue that run, "
                "--overwrite to start it again, or pick another --out"
            )
        else:
            if existing:
                self._clear()
            if resume:
                notes.append(f"no run at {self.path} yet: starting a new one")
            _write_atomic(self.config_path, config.model_dump_json(indent=2) + "\n")
            self.traces_path.touch()
        self._handle = self.traces_path.open("a", encoding="utf-8")
        return notes

    def _lock(self) -> None:
        """Hold the folder for this process: a second run writing the same trace file would mix lines.
        The kernel drops the lock when the process dies, kill -9 included."""
        self._lock_fd = os.open(self.path, os.O_RDONLY)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._lock_fd)
            self._lock_fd = None
            raise ConfigError(
                f"another sandbox generate is writing to {self.path}; wait for it or stop it"
            ) from None

    def _load(self, config: RunConfig, notes: list[str]) -> None:
        if not self.config_path.exists():
            raise ConfigError(f"--resume: {self.path} has no {CONFIG_FILE}; it is not a run folder")
        try:
            old = RunConfig.model_validate_json(self.config_path.read_bytes())
        except ValidationError as exc:
            raise ConfigError(f"{self.config_path}: not a run config: {_describe(exc)}") from exc
        differences = config_differences(old, config)
        if differences:
            raise ConfigError(
                f"--resume: this run's settings differ from {self.config_path} in "
                f"{'; '.join(differences)}; resume with the run's own settings, or start a new --out"
            )
        if old.code_version != config.code_version:
            notes.append(f"code version {config.code_version} resumes a run begun by {old.code_version}")
        if not self.traces_path.exists():
            self.traces_path.touch()
        self.partial = cut_partial_tail(self.traces_path)
        if self.partial is not None:
            size = self.partial.stat().st_size
            notes.append(
                f"cut a half-written last line ({size} bytes) from {TRACES_FILE}; kept in {self.partial}"
            )
        for number, line in complete_lines(self.traces_path):
            try:
                key = _TraceKey.model_validate_json(line)
            except ValidationError as exc:
                raise TraceFileError(
                    f"{self.traces_path}:{number}: not a valid trace: {_describe(exc)}"
                ) from exc
            pair = (key.task_id, key.sample)
            if pair in self.done:
                self.duplicates += 1
                continue
            self.done.add(pair)
            self.rewards.add({name: reward.value for name, reward in key.rewards.items()})
        if self.duplicates:
            notes.append(
                f"{TRACES_FILE} holds {self.duplicates} repeated (task, sample) line(s); each counts once"
            )

    def _clear(self) -> None:
        for path in (self.config_path, self.traces_path, *self.path.glob(TRACES_FILE + PARTIAL_SUFFIX + "*")):
            path.unlink(missing_ok=True)

    def append(self, trace: Trace) -> None:
        """Write one trace line and make it durable before returning."""
        write_trace(self._handle, trace)
        os.fsync(self._handle.fileno())
        self.done.add((trace.task_id, trace.sample))

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing the descriptor releases the lock
            self._lock_fd = None


def _write_atomic(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    with temporary.open("w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
    _fsync_path(path.parent)


def _fsync_path(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


# --------------------------------------------------------------------------- progress


@dataclass
class GenerateSummary:
    """What a generation run did (this invocation) and where the whole run stands."""

    run_dir: Path
    expected: int
    before: int  # pairs already written when this invocation started
    written: int = 0
    seconds: float = 0.0
    completion_tokens: int = 0
    episode_seconds: float = 0.0
    stops: Counter[str] = field(default_factory=Counter)
    rewards: RewardMeans = field(default_factory=RewardMeans)
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
        self.rewards.add({name: reward.value for name, reward in trace.rewards.items()})


class RunProgress:
    """A rich progress bar on stderr: traces done, ETA, tokens/s, the running mean of each reward.
    Drawn only on a terminal."""

    def __init__(self, console: Console, summary: GenerateSummary) -> None:
        self._summary = summary
        self._started = time.perf_counter()
        self._bar = Progress(
            TextColumn("[bold]generate"),
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
        self._task: TaskID = self._bar.add_task(
            "traces", total=summary.expected, completed=summary.before, speed="", means=self._means()
        )

    def __enter__(self) -> RunProgress:
        self._bar.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._bar.stop()

    def update(self) -> None:
        elapsed = time.perf_counter() - self._started
        speed = self._summary.completion_tokens / elapsed if elapsed > 0 else 0.0
        self._bar.update(
            self._task, completed=self._summary.total, speed=f"{speed:.0f} tok/s", means=self._means()
        )

    def _means(self) -> str:
        means = self._summary.rewards.means()
        return "  ".join(f"{name} {value:+.2f}" for name, value in means.items() if value is not None)


def summary_table(summary: GenerateSummary) -> Table:
    """The run in a few rows: traces, speed, stop reasons, and each reward's mean over the whole run."""
    table = Table(title=f"generate: {summary.run_dir}", show_header=False)
    table.add_column("what")
    table.add_column("value", justify="right")
    table.add_row("traces in the run", f"{summary.total}/{summary.expected}")
    table.add_row("written now", str(summary.written))
    if summary.written:
        table.add_row("seconds per trace (wall / written)", f"{summary.seconds / summary.written:.2f}")
        table.add_row("mean episode seconds", f"{summary.episode_seconds / summary.written:.2f}")
        table.add_row("tokens/s (all episodes together)", f"{summary.tokens_per_second:.0f}")
        table.add_row("stop reasons", ", ".join(f"{k} {v}" for k, v in summary.stops.most_common()))
    for name, mean in summary.rewards.means().items():
        table.add_row(f"mean {name}", "-" if mean is None else f"{mean:+.3f}")
    return table


# --------------------------------------------------------------------------- the run


def open_model(options: GenerateOptions) -> Model:
    """The run's model backend, chosen in this one place: an HTTP server when ``http`` is set; else
    llama.cpp in process, batched over ``parallel`` sequences when more than one episode runs at once."""
    if options.http is not None:
        return open_http_model(options.http)
    if options.parallel > 1:
        from sandbox._batched import BatchedLlamaModel

        return BatchedLlamaModel(
            options.model,
            n_seq=options.parallel,
            n_ctx=options.n_ctx,
            n_gpu_layers=options.n_gpu_layers,
            seed=options.seed,
            lora_path=options.lora,
        )
    return LlamaModel(
        options.model,
        n_ctx=options.n_ctx,
        n_gpu_layers=options.n_gpu_layers,
        seed=options.seed,
        lora_path=options.lora,
    )


async def run_sample(
    task: Task, sample: int, model: Model, hub: ToolHub, limits: Limits, *, mode: Mode, sampling: Sampling
) -> Trace:
    """One (task, sample) episode with its own derived seed, and its own view of the hub: a stateful
    server's state (a play history, a folder) stays inside the episode, also when episodes run at once."""
    seeded = sampling.model_copy(update={"seed": derive_seed(sampling.seed, task.id, sample)})
    async with hub.episode(task.servers) as episode_hub:
        return await run_episode(task, model, episode_hub, limits, mode=mode, sampling=seeded, sample=sample)


def check_options(options: GenerateOptions) -> None:
    problems = [
        (options.n < 1, "--n must be at least 1"),
        (options.parallel < 1, "--parallel must be at least 1"),
        (options.temperature < 0, "--temperature must be 0 or more"),
        (not 0 < options.top_p <= 1, "--top-p must be in (0, 1]"),
        (
            options.max_tokens < 1 or options.token_budget < 1,
            "--max-tokens and --token-budget must be positive",
        ),
        (options.max_steps < 1, "--max-steps must be at least 1"),
        (options.n_ctx < 2 * MIN_COMPLETION_TOKENS, f"--n-ctx must be at least {2 * MIN_COMPLETION_TOKENS}"),
        (
            options.mode not in ("constrained", "free"),
            f"--mode must be 'constrained' or 'free', not {options.mode!r}",
        ),
        (options.http is not None and options.model is not None, "--model and --base-url exclude each other"),
        (options.http is not None and options.lora is not None, "--lora applies to --model, not --base-url"),
        (options.ray_workers < 1, "--ray-workers must be at least 1"),
    ]
    for failed, message in problems:
        if failed:
            raise ConfigError(message)


async def generate(
    options: GenerateOptions, *, console: Console | None = None, model: Model | None = None
) -> GenerateSummary:
    """Run every pending (task, sample) of ``options`` into its run folder (see the module doc).

    Everything is checked before a model or server starts. ``model`` replaces the model that
    ``options`` names (tests pass a scripted one); it is not closed here.
    """
    console = console or Console(stderr=True)
    check_options(options)
    tasks, servers, rewards = check_run_inputs(
        options.tasks, options.servers, options.rewards, judge=options.judge, only=options.only
    )
    if model is None:
        identity = model_ref(options)
    else:
        info = model.info
        identity = ModelRef(
            name=info.name, path=info.path, sha256=info.sha256, lora=info.lora, lora_sha256=info.lora_sha256
        )
    config = build_config(options, tasks, servers, rewards, identity)
    folder = RunFolder(options.out)
    try:
        notes = folder.open(config, resume=options.resume, overwrite=options.overwrite)
        pending = [(t, s) for t in tasks for s in range(options.n) if (t.id, s) not in folder.done]
        summary = GenerateSummary(
            run_dir=options.out,
            expected=len(tasks) * options.n,
            before=len(folder.done & _pairs(tasks, options.n)),
        )
        summary.rewards, summary.notes = folder.rewards, notes
        for note in notes:
            console.print(note, highlight=False, markup=False)
        if pending and options.ray is not None and model is None:
            await _run_pending_on_ray(options, config, pending, folder, summary, console)
        elif pending:
            own_model = model is None
            model = model or open_model(options)
            try:
                await _run_pending(
                    options, config, pending, model, servers, rewards, folder, summary, console
                )
            finally:
                if own_model:
                    await _close_model(model)
        return summary
    finally:
        folder.close()


async def _run_pending_on_ray(
    options: GenerateOptions,
    config: RunConfig,
    pending: list[tuple[Task, int]],
    folder: RunFolder,
    summary: GenerateSummary,
    console: Console,
) -> None:
    """The pending pairs on Ray workers (see ``sandbox/_ray.py``); this process stays the one writer."""
    from sandbox._ray import run_on_ray

    started = time.perf_counter()
    with RunProgress(console, summary) as progress:

        def on_trace(trace: Trace) -> None:
            folder.append(trace)
            summary.add(trace)
            summary.seconds = time.perf_counter() - started
            progress.update()

        try:
            hosts = await run_on_ray(
                options, config.sampling.model_dump_json(), config.mode, pending, on_trace
            )
        finally:
            summary.seconds = time.perf_counter() - started
    summary.notes.append(f"ran on {len(hosts)} Ray worker(s): {', '.join(sorted(set(hosts)))}")


def _pairs(tasks: Sequence[Task], n: int) -> set[tuple[str, int]]:
    return {(task.id, sample) for task in tasks for sample in range(n)}


async def _run_pending(
    options: GenerateOptions,
    config: RunConfig,
    pending: list[tuple[Task, int]],
    model: Model,
    servers: Mapping[str, ServerConfig],
    rewards: Mapping[str, RewardFn],
    folder: RunFolder,
    summary: GenerateSummary,
    console: Console,
) -> None:
    limits = Limits(
        max_steps=options.max_steps,
        max_completion_tokens=options.token_budget,
        call_timeout=options.call_timeout,
    )
    scoring = anyio.CapacityLimiter(1)
    queue = iter(pending)
    started = time.perf_counter()

    async with ToolHub(servers, call_timeout=options.call_timeout) as hub:
        with RunProgress(console, summary) as progress:

            async def worker() -> None:
                for task, sample in queue:  # one shared iterator: each pair goes to one worker
                    trace = await run_sample(
                        task, sample, model, hub, limits, mode=config.mode, sampling=config.sampling
                    )
                    trace = await anyio.to_thread.run_sync(score_trace, trace, task, rewards, limiter=scoring)
                    folder.append(trace)
                    summary.add(trace)
                    summary.seconds = time.perf_counter() - started
                    progress.update()

            try:
                async with anyio.create_task_group() as group:
                    for _ in range(min(options.parallel, len(pending))):
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
    for kind in (SandboxError, RewardError, KeyboardInterrupt):
        for leaf in leaves:
            if isinstance(leaf, kind):
                return leaf
    return leaves[0] if len(leaves) == 1 else errors


async def _close_model(model: Model) -> None:
    aclose = getattr(model, "aclose", None)  # an HTTP model's connections on this event loop
    close = getattr(model, "close", None)
    if aclose is not None:
        await aclose()
    if close is not None:
        close()
