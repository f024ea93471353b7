"""The lazy grammar on the real model: output always fits, also when the model's favourites don't."""

import re

import pytest

from sandbox._models import LlamaModel, ModelRequest
from sandbox._records import Message, Sampling

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
