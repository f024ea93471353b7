"""The records: every value that crosses a room boundary, as pydantic models.

The flow is ``Task -> run_episode -> Trace -> rewards -> Trace (scored)``. A trace is one JSON line,
versioned by ``schema_version``; :func:`read_traces` and :func:`write_trace` are the only code that
reads or writes that format.

Tool calls are stored once, in one shape (:class:`ToolCall`, arguments as a dict); exporters convert
to the shapes trainers want.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal, TextIO

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from sandbox._errors import ConfigError, TaskFileError, TraceFileError

SCHEMA_VERSION = 1

JSONObject = dict[str, Any]


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --------------------------------------------------------------------------- tasks


class IdealCall(_Record):
    """A tool call the task expects, with the acceptable values of each argument.

    ``arguments`` maps a parameter name to the list of values that count as right (the BFCL
    convention). A parameter left out of ``arguments`` is not checked.
    """

    name: str
    arguments: dict[str, list[Any]] = Field(default_factory=dict)


AnswerMatch = Literal["exact", "contains", "number", "math"]


class Task(_Record):
    """One episode to run: a prompt, the servers it may use, and what a right episode looks like."""

    id: str
    prompt: str
    servers: list[str] = Field(default_factory=list)
    system: str | None = None
    expected_answer: str | list[str] | None = None
    answer_match: AnswerMatch = "exact"
    ideal_calls: list[IdealCall] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    max_steps: int | None = None

    @property
    def needs_tool(self) -> bool:
        return bool(self.ideal_calls)

    @property
    def acceptable_answers(self) -> list[str]:
        if self.expected_answer is None:
            return []
        if isinstance(self.expected_answer, str):
            return [self.expected_answer]
        return list(self.expected_answer)


def _describe(exc: ValidationError, most: int = 3) -> str:
    """A pydantic error in one line: where and what, for the first few problems."""
    parts = []
    for error in exc.errors(include_url=False)[:most]:
        where = ".".join(str(part) for part in error["loc"])
        parts.append(f"{where}: {error['msg']}" if where else error["msg"])
    more = exc.error_count() - most
    return "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")


def read_tasks(path: str | Path) -> list[Task]:
    """Read a JSONL task file, failing with the file and line of the first bad record."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise TaskFileError(f"cannot read task file {path}: {exc.strerror or exc}") from exc
    tasks: list[Task] = []
    seen: set[str] = set()
    for number, line in enumerate(lines, start=1):
        if not line.strip() or line.lstrip().startswith("//"):
            continue
        try:
            task = Task.model_validate_json(line)
        except ValidationError as exc:
            detail = _describe(exc)
            raise TaskFileError(f"{path}:{number}: not a valid task: {detail}") from exc
        if task.id in seen:
            raise TaskFileError(f"{path}:{number}: duplicate task id {task.id!r}")
        seen.add(task.id)
        tasks.append(task)
    if not tasks:
        raise TaskFileError(f"{path}: no tasks in file")
    return tasks


# --------------------------------------------------------------------------- tools


class ToolSpec(_Record):
    """A tool as an MCP server lists it."""

    name: str
    description: str = ""
    input_schema: JSONObject = Field(default_factory=lambda: {"type": "object", "properties": {}})
    output_schema: JSONObject | None = None
    server: str = ""


class ToolCall(_Record):
    """A call the model made: a tool name and its arguments."""

    id: str
    name: str
    arguments: JSONObject = Field(default_factory=dict)


# ``not_recorded``: a replay (``sandbox replay``) has no recorded result for the call.
ToolErrorKind = Literal[
    "tool_error", "unknown_tool", "timeout", "server_crashed", "protocol_error", "not_recorded"
]


class ToolResult(_Record):
    """What came back from a call. ``is_error`` results are shown to the model like any other."""

    text: str
    is_error: bool = False
    error_kind: ToolErrorKind | None = None
    structured: JSONObject | None = None


# --------------------------------------------------------------------------- messages and steps


class Message(_Record):
    """A chat message as the model saw it. Assistant messages hold the raw text the model wrote."""

    role: Literal["system", "user", "assistant", "tool"]
    content: str
    name: str | None = None
    tool_call_id: str | None = None
    tool_calls: list[ToolCall] | None = None


ActionKind = Literal["tool_call", "answer", "broken_call"]


class Usage(_Record):
    """Token counts of one model turn.

    ``prompt_tokens`` is the whole prompt; of it, ``prompt_tokens_reused`` came from the KV cache and
    ``prompt_tokens_evaluated`` were computed this turn. ``new_prompt_tokens`` counts the tokens that
    were not part of the previous turn's context (the ideal number to evaluate).
    """

    prompt_tokens: int = 0
    prompt_tokens_evaluated: int = 0
    prompt_tokens_reused: int = 0
    new_prompt_tokens: int = 0
    completion_tokens: int = 0


class Step(_Record):
    """One assistant turn: free thoughts, then exactly one action, and what the action returned."""

    index: int
    raw_text: str
    thought: str = ""
    action: ActionKind
    call: ToolCall | None = None
    parse_error: str | None = None
    answer: str | None = None
    result: ToolResult | None = None
    finish_reason: str = ""
    usage: Usage = Field(default_factory=Usage)
    model_seconds: float = 0.0
    tool_seconds: float = 0.0

    @property
    def is_error(self) -> bool:
        return self.result is not None and self.result.is_error


StopReason = Literal["answer", "max_steps", "token_budget", "context_full", "model_error"]


# --------------------------------------------------------------------------- rewards


class Reward(_Record):
    """A reward's verdict on one trace.

    ``value`` is None when the reward could not score the trace; ``reason`` then says why.
    ``components`` name each term that went into ``value``; ``per_step`` holds step-level scores
    where the reward has them.
    """

    name: str
    version: str
    value: float | None
    components: dict[str, float] = Field(default_factory=dict)
    per_step: list[float | None] | None = None
    reason: str = ""


class Attributes(_Record):
    """The five HelpSteer attributes of a response, each in [0, 1]."""

    helpfulness: float = Field(ge=0.0, le=1.0)
    correctness: float = Field(ge=0.0, le=1.0)
    coherence: float = Field(ge=0.0, le=1.0)
    complexity: float = Field(ge=0.0, le=1.0)
    verbosity: float = Field(ge=0.0, le=1.0)


# --------------------------------------------------------------------------- traces


class Sampling(_Record):
    temperature: float = 0.0
    top_p: float = 1.0
    max_tokens: int = 512
    seed: int = 0


class ModelInfo(_Record):
    """Provenance of the model that wrote a trace."""

    name: str
    path: str = ""
    sha256: str = ""
    n_ctx: int = 0
    backend: str = ""
    lora: str = ""  # a LoRA adapter GGUF applied to the model, and its sha256
    lora_sha256: str = ""


class ServerInfo(_Record):
    name: str
    version: str = ""
    transport: str = ""


class Trace(_Record):
    """Everything that happened in one episode, and the rewards it earned."""

    schema_version: int = SCHEMA_VERSION
    id: str
    task_id: str
    task: Task
    sample: int = 0
    mode: Literal["constrained", "free"] = "constrained"
    model: ModelInfo
    sampling: Sampling = Field(default_factory=Sampling)
    servers: list[ServerInfo] = Field(default_factory=list)
    tools: list[ToolSpec] = Field(default_factory=list)
    messages: list[Message] = Field(default_factory=list)
    steps: list[Step] = Field(default_factory=list)
    final_answer: str | None = None
    stop_reason: StopReason
    error: str | None = None
    rewards: dict[str, Reward] = Field(default_factory=dict)
    wall_seconds: float = 0.0
    model_seconds: float = 0.0
    tool_seconds: float = 0.0
    created_at: str = ""
    code_version: str = ""
    # Set on a trace made by ``sandbox replay``: the id of the trace whose turns and tool results it re-ran.
    replayed_from: str | None = None

    @field_validator("schema_version")
    @classmethod
    def _known_version(cls, value: int) -> int:
        if value > SCHEMA_VERSION:
            raise ValueError(f"trace schema_version {value} is newer than this sandbox ({SCHEMA_VERSION})")
        return value

    @property
    def completion_tokens(self) -> int:
        return sum(step.usage.completion_tokens for step in self.steps)

    @property
    def tool_calls(self) -> list[ToolCall]:
        return [step.call for step in self.steps if step.call is not None]

    def tool(self, name: str) -> ToolSpec | None:
        return next((spec for spec in self.tools if spec.name == name), None)


def check_trace_output(source: Path, out: Path, *, overwrite: bool, made: str) -> None:
    """Refuse an output trace file that is the input, or that holds traces when not ``overwrite``."""
    if out.resolve() == source.resolve():
        raise ConfigError(f"{out} is the input file; write the {made} traces somewhere else")
    if not overwrite and out.exists() and out.stat().st_size > 0:
        raise ConfigError(f"{out} already holds traces; pass --overwrite to replace it, or pick another -o")


@contextlib.contextmanager
def replacing_trace_file(out: Path) -> Iterator[TextIO]:
    """A handle on a temporary file beside ``out``, moved onto ``out`` when the block ends and
    removed when it fails: ``out`` is never left half-written."""
    out.parent.mkdir(parents=True, exist_ok=True)
    handle = tempfile.NamedTemporaryFile(  # noqa: SIM115 -- closed below, then moved or removed
        "w", encoding="utf-8", dir=out.parent, prefix=f".{out.name}.", suffix=".partial", delete=False
    )
    try:
        with handle:
            yield handle
        os.replace(handle.name, out)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(handle.name)
        raise


def write_trace(handle: Any, trace: Trace) -> None:
    """Append one trace as a JSON line to an open text file, flushed."""
    handle.write(trace.model_dump_json() + "\n")
    handle.flush()


def iter_traces(path: str | Path) -> Iterator[Trace]:
    """Yield the traces of a JSONL file, naming the file and line of a bad record."""
    path = Path(path)
    try:
        handle = path.open(encoding="utf-8")
    except OSError as exc:
        raise TraceFileError(f"cannot read trace file {path}: {exc.strerror or exc}") from exc
    with handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                yield Trace.model_validate_json(line)
            except ValidationError as exc:
                detail = _describe(exc)
                raise TraceFileError(f"{path}:{number}: not a valid trace: {detail}") from exc


def read_traces(path: str | Path) -> list[Trace]:
    return list(iter_traces(path))


def dumps(value: Any) -> str:
    """Compact, stable JSON used wherever the model reads JSON."""
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))
