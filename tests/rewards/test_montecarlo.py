"""Monte Carlo step values: the share of a policy's continuations that reach the expected answer.

The arithmetic of the estimate is checked against written continuations; the real policy (the
embedded model through ``BatchedLlamaModel``) is in tests/sandbox/test_rollouts.py.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rewards import MonteCarloPRM, ProcessRewardModel, grade_all
from rewards._montecarlo import NO_ESTIMATE, final_answer
from sandbox.records import Step, Task

TASK = Task(
    id="t", prompt="Tom has 3 apples and buys 4 more. How many?", expected_answer="7", answer_match="math"
)


def steps(*texts: str) -> list[Step]:
    return [Step(index=i, raw_text=t, action="answer", answer=t) for i, t in enumerate(texts)]


class Written:
    """Continuations written in advance: for the prefix of n steps, ``by_length[n]``."""

    version = "written"

    def __init__(self, by_length: dict[int, list[str]]) -> None:
        self.by_length = by_length
        self.calls: list[list[list[str]]] = []

    def continuations(self, problem: str, prefixes: Sequence[Sequence[str]], k: int) -> list[list[str]]:
        self.calls.append([list(p) for p in prefixes])
        return [self.by_length[len(prefix)][:k] for prefix in prefixes]


def test_a_step_is_worth_the_share_of_continuations_that_reach_the_answer() -> None:
    rollouts = Written({1: ["so 7.", "so \\boxed{7}", "so 8", "no idea"], 2: ["7", "7", "7", "12"]})
    prm = MonteCarloPRM(rollouts, k=4)
    assert isinstance(prm, ProcessRewardModel)
    solution = steps("He starts with 3.", "He buys 4 more: 3 + 4 = 7.")
    assert grade_all(prm, TASK, solution) == [0.5, 0.75]
    assert len(rollouts.calls) == 1 and [len(p) for p in rollouts.calls[0]] == [1, 2]  # one batch
    assert prm.grade_step(TASK, solution[:1], solution[1]) == 0.75
    assert prm.version == "1+k4+written"


def test_a_boxed_step_is_judged_without_continuations() -> None:
    rollouts = Written({1: ["7"] * 2})
    prm = MonteCarloPRM(rollouts, k=2)
    assert grade_all(prm, TASK, steps("3 + 4 = 7", "The answer is \\boxed{8}.")) == [1.0, 0.0]
    assert [len(p) for p in rollouts.calls[0]] == [1]  # only the open step was continued
    assert grade_all(prm, TASK, steps("\\boxed{7}")) == [1.0]


def test_without_an_expected_answer_nothing_is_estimated() -> None:
    rollouts = Written({})
    no_answer = Task(id="t", prompt="Say hi")
    assert MonteCarloPRM(rollouts, k=3).grade_steps(no_answer, steps("hi", "there")) == [NO_ESTIMATE] * 2
    assert rollouts.calls == []
    with pytest.raises(ValueError, match="k must be at least 1"):
        MonteCarloPRM(rollouts, k=0)


@given(
    st.text(alphabet=st.characters(blacklist_categories=("Nd",)), max_size=40), st.integers(-(10**6), 10**6)
)
def test_the_last_number_is_the_answer_unless_one_is_boxed(words: str, number: int) -> None:
    assert final_answer(f"{words} {number}") == str(number)
    assert final_answer(f"\\boxed{{{number}}} {words} 99") == str(number)
    assert final_answer(words.replace("boxed", "")) is None
