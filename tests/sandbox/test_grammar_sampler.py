"""The lazy grammar on the real model: output always fits, also when the model's favourites don't."""

import re

import pytest

from sandbox.models import LlamaModel, ModelRequest
from sandbox.records import Message, Sampling

STORY = [Message(role="user", content="Tell me a long story about a cat.")]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_output_fits_a_grammar_the_model_would_not_choose(llama_model: LlamaModel, seed: int) -> None:
    grammar = 'root ::= "ID-" [0-9]{3} "-" ("red" | "blue")'
    response = llama_model.complete(
        ModelRequest(STORY, Sampling(temperature=1.0, max_tokens=32, seed=seed), grammar=grammar)
    )
    assert re.fullmatch(r"ID-[0-9]{3}-(red|blue)", response.text), response.text
    lazy = next(iter(llama_model._grammars.values()))
    assert lazy.full_checks > 0  # the likeliest tokens did not fit: the whole vocabulary was checked


def test_grammar_state_resets_between_completions(llama_model: LlamaModel) -> None:
    grammar = 'root ::= ("yes" | "no") "."'
    for seed in range(3):
        response = llama_model.complete(
            ModelRequest(
                [Message(role="user", content="Is the sky blue?")],
                Sampling(temperature=0.9, max_tokens=8, seed=seed),
                grammar=grammar,
            )
        )
        assert response.text in ("yes.", "no."), response.text


def test_tool_call_strings_cannot_hold_raw_control_characters(llama_model: LlamaModel) -> None:
    # JSON forbids a raw newline inside a string; a grammar-valid call must always parse.
    import numpy as np

    from sandbox.models._grammar_sampler import LazyGrammar
    from sandbox.records import ToolSpec
    from sandbox.turns import build_grammar

    schema = {"type": "object", "properties": {"expression": {"type": "string"}}, "required": ["expression"]}
    grammar = build_grammar([ToolSpec(name="calculate", description="math", input_schema=schema)])
    lazy = LazyGrammar(llama_model._llm._model.vocab, grammar)
    prefix = '<think>\nx\n</think>\n<tool_call>\n{"name": "calculate", "arguments": {"expression": "1'
    for byte in prefix:  # one character at a time, so no token straddles the point of interest
        (token,) = llama_model.tokenize_piece(byte)
        lazy.accept(token)
    newline, tab, plus = (llama_model.tokenize_piece(c)[0] for c in ("\n", "\t", "+"))
    scores = np.full(llama_model._llm.n_vocab(), -1e9, dtype=np.float32)
    scores[[newline, tab, plus]] = 0.0
    allowed = set(lazy.allowed(scores).tolist())
    assert plus in allowed
    assert newline not in allowed and tab not in allowed
    lazy.close()
