"""``run_episode``: one task, one model, one hub -> one Trace.

Each step the model writes free thoughts and one action (the first it writes: text after it stays in the
step's ``raw_text`` but never enters the transcript). A tool call goes to the hub and its result
joins the transcript; a broken call is answered with a short note on how to write one; an answer
ends the episode. The episode also ends at ``max_steps``, when the token budget is spent, or when
the context is full, and the trace records which.

The transcript only grows (append-only), so llama.cpp reuses the KV cache of every earlier turn.

Server state. When the task has state checks (``expected_state``, state milestones or minefields)
and the hub can read state (a ``read_state(server, uri)`` method, as ``EpisodeHub`` has), the
resources they name are read after every step that made a call (``Step.state``) and once more at
the end (``Trace.final_state``), through the episode's own connections. The model never sees them.
"""

from __future__ import annotations

import functools
import json
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from sandbox.models import Model, ModelRequest
from sandbox.records import (
    ContextFullError,
    Message,
    Sampling,
    SandboxError,
    ServerInfo,
    ServerState,
    Step,
    StopReason,
    Task,
    ToolResult,
    ToolSpec,
    Trace,
    code_version,
)
from sandbox.turns import Format, choose_format, compact_result

Mode = Literal["constrained", "free"]


@dataclass(frozen=True)
class Limits:
    """When an episode stops if the model does not answer first."""

    max_steps: int = 6
    max_completion_tokens: int = 4096  # across all steps of the episode
    call_timeout: float = 30.0


class Hub(Protocol):
    """What an episode needs from a tool hub (``ToolHub`` is the real one)."""

    def tools(self, servers: list[str] | None = None) -> list[ToolSpec]: ...

    def server_info(self, servers: list[str] | None = None) -> list[ServerInfo]: ...

    async def call(
        self, name: str, arguments: dict, *, servers: list[str] | None = None, timeout: float | None = None
    ) -> ToolResult: ...


@functools.lru_cache(maxsize=64)
def _cached_grammar(tools_json: str, fmt: Format, max_tokens: int | None) -> str:
    return fmt.grammar([ToolSpec.model_validate(t) for t in json.loads(tools_json)], max_tokens=max_tokens)


TAGS = Format()


def grammar_for(tools: list[ToolSpec], fmt: Format = TAGS, max_tokens: int | None = None) -> str:
    """The constrained-mode grammar for a tool set in a turn format, every turn fitting
    ``max_tokens`` (cached: tasks share tool sets)."""
    return _cached_grammar(json.dumps([t.model_dump() for t in tools], sort_keys=True), fmt, max_tokens)


def grammar_tokens(turn_tokens: int, max_tokens: int) -> int:
    """The token limit a turn's grammar is built for: the turn's own, or, when the episode's budget
    cuts it below ``max_tokens``, that rounded down to a multiple of 32 (few grammars to build)."""
    return turn_tokens if turn_tokens >= max_tokens else max(32, turn_tokens - turn_tokens % 32)


def episode_format(model: Model, choice: str | Format = "auto") -> Format:
    """The turn format an episode with ``model`` runs: ``choice`` (``--format``) against the model's
    chat template (a backend without one, an HTTP server, runs the tag format under ``auto``)."""
    if isinstance(choice, Format):
        return choice
    return choose_format(choice, getattr(model, "chat_template", None))


async def run_episode(
    task: Task,
    model: Model,
    hub: Hub,
    limits: Limits = Limits(),
    *,
    mode: Mode = "constrained",
    sampling: Sampling | None = None,
    sample: int = 0,
    turn_format: str | Format = "auto",
) -> Trace:
    """Run ``task`` to its end and return the trace (rewards are added by the caller).

    ``turn_format`` (``auto``, ``native``, ``tags``, a family, or a :class:`Format`) is resolved
    against the model's chat template by :func:`episode_format`; the trace records it."""
    started = time.perf_counter()
    sampling = sampling or Sampling()
    fmt = episode_format(model, turn_format)
    tools = hub.tools(task.servers)
    messages = [
        Message(role="system", content=fmt.system_prompt(tools, task.system)),
        Message(role="user", content=task.prompt),
    ]
    template_tools = fmt.template_tools(tools)
    tool_names = frozenset(tool.name for tool in tools)
    stop_at = functools.partial(fmt.action_end, tool_names=tool_names) if mode == "free" else None
    reader: StateReader | None = getattr(hub, "read_state", None)
    resources = task.state_resources if reader is not None else []
    steps: list[Step] = []
    final_answer: str | None = None
    stop: StopReason = "max_steps"
    error: str | None = None
    used_tokens = 0
    previous_messages = 0
    max_steps = task.max_steps or limits.max_steps
    for index in range(max_steps):
        budget = limits.max_completion_tokens - used_tokens
        if budget <= 0:
            stop = "token_budget"
            break
        turn_tokens = min(sampling.max_tokens, budget)
        grammar = None
        if mode == "constrained":
            grammar = grammar_for(tools, fmt, grammar_tokens(turn_tokens, sampling.max_tokens))
        request = ModelRequest(
            messages=tuple(messages),
            sampling=sampling.model_copy(update={"seed": sampling.seed + index, "max_tokens": turn_tokens}),
            grammar=grammar,
            stop=fmt.stop_strings if mode == "free" else (),
            previous_messages=previous_messages,
            tools=tuple(tools),
            stop_at=stop_at,
            template_tools=template_tools,
        )
        try:
            response = await model.acomplete(request)
        except ContextFullError as exc:
            stop, error = "context_full", str(exc)
            break
        except SandboxError:  # a person must fix it (an HTTP model server refusing requests): stop the run
            raise
        except Exception as exc:  # the model backend failed: recorded once, as this trace's end
            stop, error = "model_error", f"{type(exc).__name__}: {exc}"
            break
        used_tokens += response.usage.completion_tokens
        text = fmt.complete(response.text) if mode == "free" else response.text
        parsed = fmt.parse(text, call_id=f"call_{index}", tool_names=tool_names)
        if parsed.end is not None:  # the first action is the turn: what the model wrote after it is dropped
            text = text[: parsed.end]
        messages.append(
            Message(
                role="assistant",
                content=text,
                tool_calls=[parsed.call] if parsed.action == "tool_call" and parsed.call else None,
            )
        )
        previous_messages = len(messages)
        step = Step(
            index=index,
            raw_text=response.text,
            thought=parsed.thought,
            action=parsed.action,
            call=parsed.call,
            parse_error=parsed.error,
            answer=parsed.answer,
            finish_reason=response.finish_reason,
            usage=response.usage,
            model_seconds=response.seconds,
        )
        if parsed.action == "answer":
            steps.append(step)
            final_answer, stop = parsed.answer, "answer"
            break
        if parsed.action == "tool_call" and parsed.call is not None:
            call_started = time.perf_counter()
            result = await hub.call(
                parsed.call.name, parsed.call.arguments, servers=task.servers, timeout=limits.call_timeout
            )
            update: dict[str, Any] = {"result": result, "tool_seconds": time.perf_counter() - call_started}
            if reader is not None and resources:
                update["state"] = await read_states(reader, resources)
            step = step.model_copy(update=update)
            shown = f"ERROR: {result.text}" if result.is_error else compact_result(result.text)
            messages.append(
                Message(
                    role="tool",
                    name=parsed.call.name,
                    tool_call_id=parsed.call.id,
                    content=fmt.render_result(parsed.call.name, shown),
                )
            )
        else:
            messages.append(Message(role="user", content=fmt.retry_note(parsed.error or "unreadable reply")))
        steps.append(step)
    else:
        stop = "max_steps"
    final_state = await read_states(reader, resources) if reader is not None and resources else {}
    return Trace(
        id=f"{task.id}:{sample}:{uuid.uuid4().hex[:8]}",
        task_id=task.id,
        task=task,
        sample=sample,
        mode=mode,
        format=fmt.label,
        model=model.info,
        sampling=sampling,
        servers=hub.server_info(task.servers),
        tools=tools,
        messages=messages,
        steps=steps,
        final_answer=final_answer,
        stop_reason=stop,
        error=error,
        final_state=final_state,
        wall_seconds=time.perf_counter() - started,
        model_seconds=sum(s.model_seconds for s in steps),
        tool_seconds=sum(s.tool_seconds for s in steps),
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        code_version=code_version(),
    )


StateReader = Callable[[str, str], Awaitable[Any]]
"""``read_state(server, uri)``: a resource's JSON document, or None when it cannot be read."""


async def read_states(reader: StateReader, resources: Sequence[tuple[str, str]]) -> ServerState:
    """Each ``(server, uri)`` read through ``reader``, as server -> uri -> JSON (None: not read)."""
    state: ServerState = {}
    for server, uri in resources:
        state.setdefault(server, {})[uri] = await reader(server, uri)
    return state
