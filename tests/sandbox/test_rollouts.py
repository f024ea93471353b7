"""A policy's continuations of partial solutions on the real embedded model, batched: the k
continuations of a step share their prompt's KV cells, and a Monte Carlo PRM grades with them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from rewards import MonteCarloPRM, grade_all
from sandbox.models import BatchedLlamaModel, PolicyRollouts
from sandbox.records import Step, Task

pytestmark = pytest.mark.model

PROBLEM = "Tom has 3 apples and buys 4 more. How many apples does he have?"
STEPS = ["Tom starts with 3 apples.", "He buys 4 more, so he has 3 + 4 = 7 apples."]


@pytest.fixture(scope="module")
def model() -> Iterator[BatchedLlamaModel]:
    batched = BatchedLlamaModel(n_seq=4, n_ctx=1024, n_threads=1)
    yield batched
    batched.close()


def test_k_continuations_of_each_prefix_share_the_prompt(model: BatchedLlamaModel) -> None:
    rollouts = PolicyRollouts(model, max_tokens=12)
    copied = model.stats.prompt_tokens_copied
    prefixes = [STEPS[:1], STEPS]
    samples = rollouts.continuations(PROBLEM, prefixes, 3)
    assert [len(texts) for texts in samples] == [3, 3]
    assert all(isinstance(text, str) for texts in samples for text in texts)
    prompt = rollouts.prompt(PROBLEM, STEPS)
    assert prompt.endswith(STEPS[1] + "\n\n") and PROBLEM in prompt
    # the continuations after a prefix that another sequence holds got it by a KV copy, not anew
    assert model.stats.prompt_tokens_copied > copied
    assert 0 < rollouts.tokens <= 6 * 12 and rollouts.seconds > 0
    again = PolicyRollouts(model, max_tokens=12).continuations(PROBLEM, prefixes, 3)
    assert again == samples  # each continuation samples with its own fixed seed


def test_monte_carlo_grades_are_shares_of_k(model: BatchedLlamaModel) -> None:
    task = Task(id="t", prompt=PROBLEM, expected_answer="7", answer_match="math")
    solution = [Step(index=i, raw_text=t, action="answer", answer=t) for i, t in enumerate(STEPS)]
    grades = grade_all(MonteCarloPRM(PolicyRollouts(model, max_tokens=24), k=4), task, solution)
    print(f"\nMonte Carlo values of a right two-step solution on the embedded model: {grades}")
    assert len(grades) == 2 and all(grade * 4 == int(grade * 4) and 0.0 <= grade <= 1.0 for grade in grades)
