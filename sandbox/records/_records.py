"""The records: every value that crosses a room boundary, as pydantic models.

The flow is ``Task -> run_episode -> Trace -> rewards -> Trace (scored)``. A trace is one JSON line,
versioned by ``schema_version``; ``sandbox/records/_files.py`` is the only code that reads or writes
that format.

Tool calls are stored once, in one shape (:class:`ToolCall`, arguments as a dict); exporters convert
to the shapes trainers want.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

SCHEMA_VERSION = 1

JSONObject = dict[str, Any]


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid")


Seconds = Annotated[float, Field(allow_inf_nan=False)]
"""A duration: a finite number (a line holding ``NaN`` or ``Infinity`` here is not a trace)."""


# --------------------------------------------------------------------------- tasks


class IdealCall(_Record):
    """A tool call the task expects, with the acceptable values of each argument.

    ``arguments`` maps a parameter name to the list of values that count as right (the BFCL
    convention). A parameter left out of ``arguments`` is not checked.

    ``result`` is what the call must produce where an argument is left open (a calculator's
    ``expression`` may be written many ways): a field of the tool's structured result mapped to
    the list of values that count as right, such as ``{"exact": ["15642"]}``, recorded by the task
    generator from the real server's answer to the reference solution. A call matches only when its
    recorded result (``Step.result.structured``) holds one of them in every field listed. Empty:
    only the arguments count.
    """

    name: str
    arguments: dict[str, list[Any]] = Field(default_factory=dict)
    result: dict[str, list[Any]] = Field(default_factory=dict)


AnswerMatch = Literal["exact", "contains", "number", "math"]


class SolutionCall(_Record):
    """One call of a task's reference solution, with concrete arguments: what the oracle plays."""

    name: str
    arguments: JSONObject = Field(default_factory=dict)


StateOp = Literal["equals", "contains", "exists", "absent"]


class StateCheck(_Record):
    """A fact about a server's state when the episode ends, read through a channel the model never
    sees: the server's MCP resource ``resource`` (a JSON document), at the dotted ``path`` inside it
    (``""``: the whole document). ``op``: ``equals`` (``value``, compared as JSON), ``contains``
    (``value`` is a substring of the text, or an item of the list), ``exists`` / ``absent`` (the path
    is there or not; ``value`` unused)."""

    server: str
    resource: str
    path: str = ""
    op: StateOp = "equals"
    value: Any = None


class Milestone(_Record):
    """A step of progress a right episode reaches: an ideal call matched, a fact appearing in a tool
    result, or a state check coming true. Exactly one of ``call``, ``fact``, ``state``."""

    name: str = ""
    call: IdealCall | None = None
    fact: str | None = None
    state: StateCheck | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> Milestone:
        if sum(kind is not None for kind in (self.call, self.fact, self.state)) != 1:
            raise ValueError("a milestone is exactly one of call, fact or state")
        return self


class Minefield(_Record):
    """What a right episode never does: a forbidden call (matched like an ideal call) or a forbidden
    state. Exactly one of ``call``, ``state``."""

    name: str = ""
    call: IdealCall | None = None
    state: StateCheck | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> Minefield:
        if (self.call is None) == (self.state is None):
            raise ValueError("a minefield is exactly one of call or state")
        return self


class Task(_Record):
    """One episode to run: a prompt, the servers it may use, and what a right episode looks like.

    ``expected_answer`` holds the ways of writing the one right answer; ``distractors`` lists wrong
    answers that an answer must not give (the outcome reward fails an answer that names one, even
    beside a right one). ``solution`` is the reference solution with concrete arguments (the oracle
    plays it); ``expected_state`` what must hold of the servers at the end (the outcome checks it);
    ``milestones`` and ``minefields`` the progress a right episode makes and what it never does (the
    milestone process reward grades by them). ``evidence`` lists the calls a right answer must rest
    on: when it is not empty, the outcome counts an answer only after one of them (matched like an
    ideal call) returned without error, so that a fact only a tool holds is not guessed.
    """

    id: str
    prompt: str
    servers: list[str] = Field(default_factory=list)
    system: str | None = None
    expected_answer: str | list[str] | None = None
    answer_match: AnswerMatch = "exact"
    distractors: list[str] = Field(default_factory=list)
    ideal_calls: list[IdealCall] = Field(default_factory=list)
    solution: list[SolutionCall] = Field(default_factory=list)
    expected_state: list[StateCheck] = Field(default_factory=list)
    milestones: list[Milestone] = Field(default_factory=list)
    minefields: list[Minefield] = Field(default_factory=list)
    evidence: list[IdealCall] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    max_steps: int | None = None

    @property
    def needs_tool(self) -> bool:
        return bool(self.ideal_calls)

    @property
    def state_resources(self) -> list[tuple[str, str]]:
        """The ``(server, resource)`` pairs that the task's state checks read (expected state,
        milestones, minefields), sorted, each once: what the episode records after each call."""
        checks = [
            *self.expected_state,
            *(milestone.state for milestone in self.milestones if milestone.state is not None),
            *(minefield.state for minefield in self.minefields if minefield.state is not None),
        ]
        return sorted({(check.server, check.resource) for check in checks})

    @property
    def acceptable_answers(self) -> list[str]:
        if self.expected_answer is None:
            return []
        if isinstance(self.expected_answer, str):
            return [self.expected_answer]
        return list(self.expected_answer)


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


ServerState = dict[str, dict[str, Any]]
"""Server state read through MCP resources: server name -> resource URI -> its JSON document."""


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
    model_seconds: Seconds = 0.0
    tool_seconds: Seconds = 0.0
    # After a call: the server state the task's checks read, as it was once the call returned
    # (server -> resource -> JSON, None where it could not be read); None when nothing was read.
    state: ServerState | None = None

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

    @model_validator(mode="before")
    @classmethod
    def _finite(cls, data: Any) -> Any:
        """A number that is not finite is no score: the value becomes None (a non-finite component
        is dropped and takes the value with it, a non-finite step score becomes None), and the
        reason says which."""
        if not isinstance(data, dict):
            return data
        found = []
        value = data.get("value")
        data = dict(data)
        if isinstance(value, float) and not math.isfinite(value):
            found.append(f"value {value!r}")
            data["value"] = None
        components = data.get("components")
        if isinstance(components, dict):
            bad = [k for k, v in components.items() if isinstance(v, float) and not math.isfinite(v)]
            if bad:
                found.extend(f"component {k} {components[k]!r}" for k in bad)
                data["components"] = {k: v for k, v in components.items() if k not in bad}
                data["value"] = None
        per_step = data.get("per_step")
        if isinstance(per_step, list):
            bad_steps = [i for i, v in enumerate(per_step) if isinstance(v, float) and not math.isfinite(v)]
            if bad_steps:
                found.append(f"step scores {bad_steps[:5]} {[per_step[i] for i in bad_steps[:5]]!r}")
                dropped = set(bad_steps)
                data["per_step"] = [None if i in dropped else v for i, v in enumerate(per_step)]
        if found:
            why = "not a finite number: " + ", ".join(found)
            reason = str(data.get("reason") or "")
            data["reason"] = f"{reason}; {why}" if reason else why
        return data


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
    # The turn format that ran (``sandbox.turns.Format.label``: ``tags``, ``hermes``, ``hermes+think``,
    # ``llama3``, ``mistral``, ``functiongemma``); traces from before formats existed ran ``tags``.
    format: str = "tags"
    model: ModelInfo
    sampling: Sampling = Field(default_factory=Sampling)
    servers: list[ServerInfo] = Field(default_factory=list)
    tools: list[ToolSpec] = Field(default_factory=list)
    messages: list[Message] = Field(default_factory=list)
    steps: list[Step] = Field(default_factory=list)
    final_answer: str | None = None
    stop_reason: StopReason
    error: str | None = None
    # The server state the task's checks read, when the episode ended (see ``Step.state``); empty
    # when the task has no state check or the hub cannot read state.
    final_state: ServerState = Field(default_factory=dict)
    rewards: dict[str, Reward] = Field(default_factory=dict)
    wall_seconds: Seconds = 0.0
    model_seconds: Seconds = 0.0
    tool_seconds: Seconds = 0.0
    created_at: str = ""
    code_version: str = ""
    # Set on a trace made by ``sandbox replay``: the id of the trace whose turns and tool results it re-ran.
    replayed_from: str | None = None
    # What was changed so the trace could be written (see ``records.trace_line``): absent when nothing.
    notes: list[str] = Field(default_factory=list, exclude_if=lambda notes: not notes)

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


def dumps(value: Any) -> str:
    """Compact, stable JSON used wherever the model reads JSON."""
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))


@dataclass(frozen=True)
class JudgePrompt:
    """One question to a judge model: a system message, the user's question (text from a model, a
    tool or a task file: never control tokens), and the start of the judge's reply, after which it
    writes its score."""

    system: str
    user: str
    reply_prefix: str


RewardFn = Callable[[Trace, Task], Reward]
"""A reward: a pure, deterministic function of a trace and its task."""
