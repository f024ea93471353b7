"""Chat templates for training: the model's own text, with ``{% generation %}`` markers.

TRL's ``assistant_only_loss`` takes the loss on the tokens a template renders between
``{% generation %}`` and ``{% endgeneration %}``. A GGUF's template rarely has those markers (the
embedded SmolLM2's has none), so a training template ships for each known model template, keyed by
the template's sha256: the same text, with the assistant's content and end-of-turn token marked.
Before training, every row is rendered by both templates and must come out byte for byte the same,
so a shipped template can never train on text the model does not read at inference.

A template that cannot render tool calls (SmolLM2's renders only ``role`` and ``content``) drops the
calls of rows that keep them only in ``tool_calls`` (``openai`` and ``sft --calls native`` exports):
they would train as answers without calls. Such rows are refused, with the export that works.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from sandbox.train._errors import TrainDataError

TEMPLATES = Path(__file__).resolve().parent / "templates"
# sha256 of a model's own chat template (its GGUF ``tokenizer.chat_template``) -> the training template.
TRAINING_TEMPLATES = {
    # SmolLM2-135M/360M/1.7B-Instruct (ChatML with a default system prompt)
    "872be49dbb638044ad01b60388f48d469ff2980e5f0dccdc22ec907db54d0788": "smollm2.jinja",
}

Conversation = Sequence[Mapping[str, Any]]


def has_generation_markers(template: str) -> bool:
    return "{% generation %}" in template or "{%- generation %}" in template


def training_template(model_template: str, override: Path | None = None) -> str:
    """The template to train with: ``override``, the model's own when it marks generations, or the
    one shipped for it."""
    if override is not None:
        try:
            text = override.read_text(encoding="utf-8")
        except OSError as exc:
            raise TrainDataError(f"--chat-template {override}: {exc.strerror or exc}") from exc
        if not has_generation_markers(text):
            raise TrainDataError(f"--chat-template {override} has no {{% generation %}} markers")
        return text
    if has_generation_markers(model_template):
        return model_template
    name = TRAINING_TEMPLATES.get(hashlib.sha256(model_template.encode("utf-8")).hexdigest())
    if name is None:
        raise TrainDataError(
            "the model's chat template marks no assistant text ({% generation %}) and no training "
            "template ships for it; pass --chat-template FILE: the model's template with its assistant "
            "content and end-of-turn token inside {% generation %}...{% endgeneration %}"
        )
    return (TEMPLATES / name).read_text(encoding="utf-8")


def render(tokenizer: Any, messages: Conversation, template: str, tools: Any = None) -> str:
    text = tokenizer.apply_chat_template(
        list(messages), tools=_tools(tools), chat_template=template, tokenize=False
    )
    return str(text)


def _tools(tools: Any) -> Any:
    return json.loads(tools) if isinstance(tools, str) else tools


def check_identical(
    tokenizer: Any, conversations: Iterable[tuple[str, Conversation, Any]], model_template: str, template: str
) -> int:
    """Render each (where, messages, tools) with both templates; fail on the first difference.
    Returns how many conversations were compared."""
    if template == model_template:
        return 0
    count = 0
    for where, messages, tools in conversations:
        own, marked = (
            render(tokenizer, messages, model_template, tools),
            render(tokenizer, messages, template, tools),
        )
        if own != marked:
            pairs = enumerate(zip(own, marked, strict=False))
            at = next((i for i, (a, b) in pairs if a != b), min(len(own), len(marked)))
            raise TrainDataError(
                f"{where}: the training template renders this conversation differently from the model's "
                f"own template (from character {at}: {own[at : at + 40]!r} vs {marked[at : at + 40]!r})"
            )
        count += 1
    return count


def check_calls_rendered(
    tokenizer: Any, conversations: Iterable[tuple[str, Conversation, Any]], template: str
) -> None:
    """When the template cannot render tool calls, every call must be in its message's text."""
    from trl.chat_template_utils import supports_tool_calling

    probe = _TemplateOnly(tokenizer, template)
    if supports_tool_calling(probe):
        return
    for where, messages, tools in conversations:
        text = render(tokenizer, messages, template, tools)
        for message in messages:
            for call in message.get("tool_calls") or ():
                name = str((call.get("function") or call).get("name", ""))
                if name and name not in str(message.get("content") or ""):
                    raise TrainDataError(
                        f"{where}: a call to {name!r} is only in tool_calls, and the model's chat template "
                        "renders no tool calls, so it would train as a turn without its call (an openai or "
                        "`sft --calls native` export); export with `--calls text` for this model"
                    )
        if tools and not all(_tool_name(tool) in text for tool in _tools(tools)):
            raise TrainDataError(
                f"{where}: the tool list is only in the tools column, and the model's chat template does not "
                "render it; export with `--calls text` (the system prompt then lists the tools)"
            )


def _tool_name(tool: Mapping[str, Any]) -> str:
    function = tool.get("function")
    return str((function if isinstance(function, Mapping) else tool).get("name", ""))


class _TemplateOnly:
    """A tokenizer seen through another chat template (for TRL's template probes)."""

    def __init__(self, tokenizer: Any, template: str) -> None:
        self._tokenizer = tokenizer
        self.chat_template = template

    def apply_chat_template(self, messages: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("chat_template", self.chat_template)
        return self._tokenizer.apply_chat_template(messages, **kwargs)
