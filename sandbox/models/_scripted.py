"""A scripted backend: written turns, replayed. For unit tests of the loop, never the only proof."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from sandbox.models._base import ModelRequest, ModelResponse, SyncModel
from sandbox.records import ModelInfo, Usage


class ScriptedModel(SyncModel):
    """Replays written turns, in order, or asks a function for each turn. For unit tests of the loop."""

    def __init__(
        self, turns: Sequence[str] | Callable[[ModelRequest], str], *, name: str = "scripted"
    ) -> None:
        self._turns = turns
        self._index = 0
        self.requests: list[ModelRequest] = []
        self.info = ModelInfo(name=name, backend="scripted")

    def complete(self, request: ModelRequest) -> ModelResponse:
        self.requests.append(request)
        if callable(self._turns):
            text = self._turns(request)
        else:
            if self._index >= len(self._turns):
                raise IndexError(f"scripted model has only {len(self._turns)} turns")
            text = self._turns[self._index]
        self._index += 1
        tokens = max(1, len(text) // 4)
        return ModelResponse(text, "stop", Usage(completion_tokens=tokens), 0.0)
