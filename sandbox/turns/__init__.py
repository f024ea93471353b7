"""The turn format: how a model's text becomes free thoughts plus exactly one action, the grammar
that constrains it, and the one codec between these records and OpenAI's chat shapes.

- :func:`system_prompt` describes the tools and the turn's tags to the model; :func:`parse_turn`
  reads a turn leniently (a broken call is data, never an exception; the first action wins)
  and :func:`action_end` says where a turn being written is complete; :func:`complete_turn`,
  :func:`render_call` and :func:`render_result` write the canonical text of each part.
- :func:`build_grammar` turns the tools' input schemas into a llama.cpp GBNF grammar
  (:func:`bounded_schema` bounds every string and array so each path ends); given the turn's
  ``max_tokens``, every text it accepts fits in that many tokens, and integer and number ranges
  are in the grammar (``_gbnf.py``, ``_schema_grammar.py``).
- :func:`openai_tool`, :func:`openai_messages`, :func:`reply_turn_text`, :func:`openai_call`:
  the OpenAI codec (see ``_openai.py``).
"""

from sandbox.turns._formats import (
    FORMAT_CHOICES,
    FORMAT_NAMES,
    Format,
    choose_format,
    detect_format,
    format_from_label,
    is_format_choice,
)
from sandbox.turns._openai import (
    call_parts,
    openai_call,
    openai_messages,
    openai_tool,
    reply_turn_text,
    unwrap_result,
)
from sandbox.turns._turn import (
    ANSWER_CLOSE,
    ANSWER_OPEN,
    CALL_CLOSE,
    CALL_OPEN,
    MAX_ANSWER_CHARS,
    MAX_ARRAY_ITEMS,
    MAX_INTEGER_ENUM,
    MAX_STRING_CHARS,
    MAX_THOUGHT_CHARS,
    STOP_STRINGS,
    THINK_CLOSE,
    THINK_OPEN,
    ParsedTurn,
    action_end,
    bounded_schema,
    build_grammar,
    card_schema,
    compact_result,
    complete_turn,
    fit_text,
    parse_turn,
    render_call,
    render_result,
    system_prompt,
    text_width,
    turn_bounds,
)

__all__ = [
    "ANSWER_CLOSE",
    "ANSWER_OPEN",
    "CALL_CLOSE",
    "CALL_OPEN",
    "FORMAT_CHOICES",
    "FORMAT_NAMES",
    "Format",
    "MAX_ANSWER_CHARS",
    "MAX_ARRAY_ITEMS",
    "MAX_INTEGER_ENUM",
    "MAX_STRING_CHARS",
    "MAX_THOUGHT_CHARS",
    "ParsedTurn",
    "STOP_STRINGS",
    "THINK_CLOSE",
    "THINK_OPEN",
    "action_end",
    "bounded_schema",
    "build_grammar",
    "call_parts",
    "card_schema",
    "choose_format",
    "compact_result",
    "complete_turn",
    "detect_format",
    "fit_text",
    "format_from_label",
    "is_format_choice",
    "openai_call",
    "openai_messages",
    "openai_tool",
    "parse_turn",
    "render_call",
    "render_result",
    "reply_turn_text",
    "system_prompt",
    "text_width",
    "turn_bounds",
    "unwrap_result",
]
