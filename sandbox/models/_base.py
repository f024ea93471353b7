"""The model seam: one request, one response, one protocol every backend answers.

A backend writes one assistant turn per :class:`ModelRequest`. The episode loop awaits
``acomplete``; a backend whose work is synchronous (llama.cpp holds the CPU) inherits
:class:`SyncModel`, which runs ``complete`` in a worker thread so that tool calls of other
episodes go on meanwhile. ``aclose`` releases what the backend holds (weights, connections).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import anyio

from sandbox.records import Message, ModelInfo, Sampling, ToolSpec, Usage

# A turn needs room for at least this many new tokens, else the context counts as full.
MIN_COMPLETION_TOKENS = 16


@dataclass(frozen=True)
class ModelRequest:
    """One assistant turn to write: the transcript so far and how to sample."""

    messages: Sequence[Message]
    sampling: Sampling
    grammar: str | None = None
    stop: Sequence[str] = ()
    # How many leading messages were already in the previous turn's context (for token accounting).
    previous_messages: int = 0
    # The tools on offer; backends that pass tools to the server natively (OpenAI ``tools``) need them.
    tools: Sequence[ToolSpec] = ()
    # Where the text written so far holds a complete turn (its length), or None: a backend that sees
    # the text token by token stops there and keeps that much (free mode: the end of a bare call).
    # Backends that only get the whole reply (HTTP) rely on ``stop`` instead.
    stop_at: Callable[[str], int | None] | None = None
    # A native turn format: the tools the chat template's own ``tools`` argument gets (OpenAI
    # function specs); None: the template is rendered without tools (the tag format lists them in
    # the system prompt).
    template_tools: Sequence[dict[str, Any]] | None = None


@dataclass(frozen=True)
class ModelResponse:
    text: str
    finish_reason: Literal["stop", "length"]
    usage: Usage = field(default_factory=Usage)
    seconds: float = 0.0


class Model(Protocol):
    """What the episode loop needs from a model."""

    info: ModelInfo

    def complete(self, request: ModelRequest) -> ModelResponse: ...

    async def acomplete(self, request: ModelRequest) -> ModelResponse: ...

    async def aclose(self) -> None: ...


class SyncModel:
    """For backends whose ``complete`` blocks: ``acomplete`` runs it in a worker thread, ``aclose``
    calls ``close``."""

    info: ModelInfo

    def complete(self, request: ModelRequest) -> ModelResponse:
        raise NotImplementedError

    def complete_or_stop(self, request: ModelRequest, stop: threading.Event) -> ModelResponse:
        """``complete``, ending the turn early (a cut reply) soon after ``stop`` is set. A backend
        that cannot stop midway keeps this, which ignores ``stop``."""
        return self.complete(request)

    async def acomplete(self, request: ModelRequest) -> ModelResponse:
        """``complete_or_stop`` in a worker thread. Cancelled (Ctrl-C), it sets the turn's stop and
        waits, shielded, for the thread to let go of the backend, then re-raises the cancellation:
        the turn ends within a token instead of running to ``max_tokens``."""
        stop, finished = threading.Event(), threading.Event()

        def work() -> ModelResponse:
            try:
                return self.complete_or_stop(request, stop)
            finally:
                finished.set()

        try:
            return await anyio.to_thread.run_sync(work, abandon_on_cancel=True)
        except anyio.get_cancelled_exc_class():
            stop.set()
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(finished.wait)
            raise

    def close(self) -> None:
        """Release what the backend holds; a backend with nothing to release keeps this."""

    async def aclose(self) -> None:
        self.close()
