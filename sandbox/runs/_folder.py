"""Where a run's traces go: a run folder (resumable) or one trace file.

A run folder holds:

* ``config.json`` -- written before the first episode: the model (file sha256, and its LoRA adapter's),
  sampling, n, the servers, the rewards with their versions, the code version and the task file's
  sha256.
* ``traces.jsonl`` -- one trace per line, appended as each episode finishes, flushed and fsynced.
* ``traces.jsonl.partial-N`` -- bytes of a half-written last line that a resume cut off (kept, never
  silently dropped).

A resume checks that the run's settings match ``config.json`` (naming the fields that differ), cuts
a half-written last line, and leaves only the (task, sample) pairs not yet in ``traces.jsonl`` to
run. A folder is held by one process at a time (a file lock the kernel drops when the process dies).

A trace file (``sandbox run --out traces.jsonl``) is written from the start, one fsynced line per
episode; one that already holds traces is replaced only with ``--overwrite``, or continued with
``--resume`` (an interrupted ``sandbox run``): a half-written last line is cut as in a run folder, and
as a trace file has no ``config.json``, each kept trace's model file (sha256), mode and sampling
(its seed derived from this run's) must be this run's.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from rewards import RewardFn
from sandbox.episodes import Mode
from sandbox.hub import ServerConfig
from sandbox.models import check_model_file, default_model_path, file_sha256
from sandbox.records import (
    PARTIAL_SUFFIX,
    ConfigError,
    JSONBoundError,
    OutputError,
    RewardTally,
    Sampling,
    Task,
    Trace,
    TraceFileError,
    code_version,
    cut_partial_tail,
    describe_error,
    lock_folder,
    trace_lines,
    validate_line,
    write_atomic,
    write_trace,
)
from sandbox.runs._spec import RunSpec

CONFIG_FILE = "config.json"
TRACES_FILE = "traces.jsonl"
# The run's servers' stderr, appended by each invocation (an --overwrite starts it again).
SERVERS_LOG = "servers.log"
CONFIG_VERSION = 1
UNDECLARED = "undeclared"


# --------------------------------------------------------------------------- config


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ModelRef(_Record):
    """Which model wrote a run: a GGUF file by its sha256 (with a LoRA adapter's, when one was
    applied), or a model server by URL and name."""

    name: str = ""
    path: str = ""
    sha256: str = ""
    lora: str = ""
    lora_sha256: str = ""
    base_url: str | None = None
    api_model: str | None = None


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
    # ``--format`` as asked (``auto``: each trace records the format it resolved to).
    turn_format: str = "auto"
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


# Fields that do not change what a trace is: a resume may change them. A file moved elsewhere keeps
# its sha256, which does count.
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
    spec: RunSpec,
    tasks: Sequence[Task],
    servers: Mapping[str, ServerConfig],
    rewards: Mapping[str, RewardFn],
    model: ModelRef,
) -> RunConfig:
    return RunConfig(
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        code_version=code_version(),
        model=model,
        n_ctx=spec.n_ctx,
        sampling=spec.sampling,
        n=spec.n,
        mode=spec.mode,
        turn_format=spec.turn_format,
        max_steps=spec.max_steps,
        token_budget=spec.token_budget,
        call_timeout=spec.call_timeout,
        tasks=FileRef(path=str(spec.tasks), sha256=file_sha256(spec.tasks)),
        task_ids=[task.id for task in tasks],
        servers_file=str(spec.servers),
        servers=_server_entries(spec.servers, servers),
        rewards=reward_versions(rewards),
        judge=None if spec.judge is None else FileRef(path=str(spec.judge), sha256=file_sha256(spec.judge)),
        parallel=spec.parallel,
    )


def model_ref(spec: RunSpec) -> ModelRef:
    """The model's identity, read before the model is loaded (so a bad file or resume fails fast)."""
    if spec.http is not None:
        return ModelRef(name=spec.http.model or "", base_url=spec.http.base_url, api_model=spec.http.model)
    path = check_model_file(spec.model if spec.model is not None else default_model_path())
    ref = ModelRef(name=path.stem, path=str(path), sha256=file_sha256(path))
    if spec.lora is not None:
        adapter = check_model_file(spec.lora)
        ref = ref.model_copy(update={"lora": str(adapter), "lora_sha256": file_sha256(adapter)})
    return ref


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
    """Each reward's declared version (``rewards.bounded`` declares one on every bundled reward);
    a reward that declares none is recorded as "undeclared". Nothing is scored to find out."""
    versions = {}
    for name, reward in rewards.items():
        stated = getattr(reward, "version", None)
        versions[name] = stated if isinstance(stated, str) and stated else UNDECLARED
    return versions


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


# --------------------------------------------------------------------------- sinks


class _RewardValue(BaseModel):
    model_config = ConfigDict(extra="ignore")
    value: float | None = None


class _TraceKey(BaseModel):
    """The part of a trace line a resume needs."""

    model_config = ConfigDict(extra="ignore")
    task_id: str
    sample: int = 0
    rewards: dict[str, _RewardValue] = Field(default_factory=dict)


class _ModelKey(BaseModel):
    model_config = ConfigDict(extra="ignore")
    sha256: str = ""


class _FileTraceKey(_TraceKey):
    """What a trace file's resume checks of each kept trace (it has no ``config.json``)."""

    mode: str = ""
    sampling: Sampling = Field(default_factory=Sampling)
    model: _ModelKey = Field(default_factory=_ModelKey)


@dataclass
class _TraceSink:
    """A trace file appended one fsynced line at a time, and the (task, sample) pairs it holds."""

    path: Path
    done: set[tuple[str, int]] = field(default_factory=set)
    rewards: RewardTally = field(default_factory=RewardTally)
    _handle: TextIO | None = None
    _failed: bool = False

    @property
    def written_to(self) -> Path:
        """The trace file the lines go to."""
        return self.path

    def append(self, trace: Trace) -> None:
        """Write one trace line and make it durable before returning."""
        assert self._handle is not None, "append before open"
        try:
            write_trace(self._handle, trace)
            os.fsync(self._handle.fileno())
        except OSError as exc:  # a full disk: every line before this one is durable
            self._failed = True
            kept = f"the {len(self.done)} trace(s) already in it are kept"
            raise OutputError.of(self.written_to, exc, kept) from None
        self.done.add((trace.task_id, trace.sample))

    def close(self) -> None:
        if self._handle is not None:
            handle, self._handle = self._handle, None
            try:
                handle.close()
            except OSError:
                if not self._failed:  # after a failed append the error is already on its way
                    raise


@dataclass
class RunFolder(_TraceSink):
    """A run folder: its config, and its trace file."""

    duplicates: int = 0
    partial: Path | None = None  # where a cut half-written line went
    _lock_fd: int | None = None

    @property
    def config_path(self) -> Path:
        return self.path / CONFIG_FILE

    @property
    def traces_path(self) -> Path:
        return self.path / TRACES_FILE

    @property
    def written_to(self) -> Path:
        return self.traces_path

    def holds_something(self) -> bool:
        return self.path.is_dir() and any(self.path.iterdir())

    def check(self, *, resume: bool, overwrite: bool) -> None:
        """The refusals that need no writing, made before a model loads: ``open`` makes them again."""
        if resume and overwrite:
            raise ConfigError("--resume and --overwrite exclude each other")
        if self.path.exists() and not self.path.is_dir():
            raise ConfigError(f"--out {self.path} is a file; a run folder is a directory")
        if self.holds_something() and not resume and not overwrite:
            raise ConfigError(
                f"run folder {self.path} is not empty; pass --resume to continue that run, "
                "--overwrite to start it again, or pick another --out"
            )

    def open(self, config: RunConfig, *, resume: bool, overwrite: bool) -> list[str]:
        """Check the folder against ``config``, write the config, and open the trace file.

        Returns notes for the person running it (a new run under --resume, a cut line, ...).
        """
        notes: list[str] = []
        self.check(resume=resume, overwrite=overwrite)
        existing = self.holds_something()
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"cannot make the run folder {self.path}: {exc.strerror or exc}") from exc
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
            try:
                write_atomic(self.config_path, config.model_dump_json(indent=2) + "\n")
                self.traces_path.touch()
            except OSError as exc:
                raise OutputError.of(self.path, exc) from None
        try:
            self._handle = self.traces_path.open("a", encoding="utf-8")
        except OSError as exc:
            raise OutputError.of(self.traces_path, exc) from None
        return notes

    def _lock(self) -> None:
        """Hold the folder for this process: a second run writing the same trace file would mix lines."""
        self._lock_fd = lock_folder(self.path)
        if self._lock_fd is None:
            raise ConfigError(
                f"another sandbox generate is writing to {self.path}; wait for it or stop it"
            ) from None

    def _load(self, config: RunConfig, notes: list[str]) -> None:
        if not self.config_path.exists():
            raise ConfigError(f"--resume: {self.path} has no {CONFIG_FILE}; it is not a run folder")
        try:
            old = RunConfig.model_validate_json(self.config_path.read_bytes())
        except ValidationError as exc:
            raise ConfigError(f"{self.config_path}: not a run config: {describe_error(exc)}") from exc
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
        for number, line, _ in trace_lines(self.traces_path):
            try:
                key = validate_line(_TraceKey, line)
            except (ValidationError, JSONBoundError) as exc:
                why = describe_error(exc) if isinstance(exc, ValidationError) else str(exc)
                raise TraceFileError(f"{self.traces_path}:{number}: not a valid trace: {why}") from exc
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
        partials = self.path.glob(TRACES_FILE + PARTIAL_SUFFIX + "*")
        for path in (self.config_path, self.traces_path, self.path / SERVERS_LOG, *partials):
            path.unlink(missing_ok=True)

    def close(self) -> None:
        super().close()
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing the descriptor releases the lock
            self._lock_fd = None


@dataclass
class TraceFile(_TraceSink):
    """One trace file: ``sandbox run --out traces.jsonl``, written from the start or resumed."""

    resumed: bool = False

    def check(self, *, overwrite: bool) -> None:
        """Refuse a folder, or a file that holds traces unless ``overwrite``; before any model loads."""
        if self.path.is_dir():
            raise ConfigError(f"--out {self.path} is a folder; `sandbox run` writes one trace file")
        if not overwrite and self.path.exists() and self.path.stat().st_size > 0:
            raise ConfigError(
                f"{self.path} already holds traces; pass --overwrite to replace it, --resume to "
                "continue it, or pick another --out"
            )

    def load(self, model_sha256: str, mode: str, sampling: Sampling) -> list[str]:
        """``--resume``: keep the traces already in the file (cutting a half-written last line) and
        mark their (task, sample) pairs done. Each must come from this run's model, mode and sampling
        (``sampling.seed`` is the run seed; a trace holds the seed derived from it). Returns notes."""
        from sandbox.runs._spec import derive_seed

        if self.path.is_dir():
            raise ConfigError(f"--out {self.path} is a folder; `sandbox run` writes one trace file")
        self.resumed = True
        if not self.path.exists():
            return [f"no trace file at {self.path} yet: starting a new one"]
        notes = []
        partial = cut_partial_tail(self.path)
        if partial is not None:
            notes.append(f"cut a half-written last line from {self.path}; kept in {partial}")
        for number, line, _ in trace_lines(self.path):
            try:
                key = validate_line(_FileTraceKey, line)
            except (ValidationError, JSONBoundError) as exc:
                why = describe_error(exc) if isinstance(exc, ValidationError) else str(exc)
                raise TraceFileError(f"{self.path}:{number}: not a valid trace: {why}") from exc
            seeded = sampling.model_copy(update={"seed": derive_seed(sampling.seed, key.task_id, key.sample)})
            differs = [
                what
                for what, same in (
                    ("model", not model_sha256 or key.model.sha256 == model_sha256),
                    ("mode", key.mode == mode),
                    ("sampling", key.sampling == seeded),
                )
                if not same
            ]
            if differs:
                raise ConfigError(
                    f"--resume: {self.path}:{number} was written with another {' and '.join(differs)} "
                    "than this run's; resume with the run's own settings, or start a new --out"
                )
            if (key.task_id, key.sample) not in self.done:
                self.done.add((key.task_id, key.sample))
                self.rewards.add({name: reward.value for name, reward in key.rewards.items()})
        return notes

    def open(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._handle = self.path.open("a" if self.resumed else "w", encoding="utf-8")
        except OSError as exc:
            raise OutputError.of(self.path, exc) from None
