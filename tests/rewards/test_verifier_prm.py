"""The verifier PRM: equations found and checked exactly; algebra and joined numbers skipped."""

from __future__ import annotations

import pytest
from _reward_builders import answer, task, trace
from hypothesis import given
from hypothesis import strategies as st

from rewards import ProcessRewardModel, RulePRM, VerifierPRM
from rewards._verifier import NO_EQUATION_GRADE, check_equations
from sandbox.records import Step, ToolCall

PRM = VerifierPRM()
TASK = task(expected="17", match="number")


def verdicts(text: str) -> list[bool]:
    return [equation.holds for equation in check_equations(text)]


def thought(text: str) -> Step:
    return Step(index=0, raw_text=text, thought=text, action="answer", answer="done")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("3 + 4 = 7", [True]),
        ("3 + 4 = 8", [False]),
        ("2 + 3 = 5 = 6", [True, False]),
        ("15% of 80 = 12", [True]),
        ("20 percent of 50 = 11", [False]),
        ("50% = 0.5", [True]),
        ("$1,200 + $300 = $1,500", [True]),
        ("12 kg * 3 = 36 kg", [True]),
        ("3 apples + 4 apples = 8 apples", [False]),
        ("3 × 4 = 12, 3 x 4 = 12, 3 * 4 = 12", [True, True, True]),
        ("12 ÷ 4 = 3; 12 / 4 = 4", [True, False]),
        ("2^10 = 1024; 2**10 = 1000", [True, False]),
        ("(2 + 3) * 4 = 20; 2(3 + 4) = 15", [True, False]),
        ("-3 + 5 = 2; 7 − 2 = 5", [True, True]),
        ("0.1 + 0.2 = 0.3", [True]),
        ("3 plus 4 = 7; 6 divided by 2 = 4", [True, False]),
        ("$\\frac{3}{4} \\times 8 = 6$", [True]),
        ("Step 1: 5 * 6 = 30\nStep 2: 30 - 4 = 25", [True, False]),
        # list bullets are not signs; a sign glued to its number still is
        ("- 2 + 3 = 5", [True]),
        ("Steps:\n- 2 + 3 = 5\n* 4 - 1 = 2", [True, False]),
        ("-2 + 3 = 1", [True]),
        # a run glued to a number outside it holds part of a side: skipped, never judged
        ("3:4 = 0.75", []),
        ("√4 = 2", []),
        ("so 2,5 + 1 = 3,5", []),
        ("1 + 1 = 2,5", []),
        ("1,000 + 1 = 1,001; ratio 1: 2 + 2 = 4", [True, True]),
    ],
)
def test_equations_are_found_and_checked_exactly(text: str, expected: list[bool]) -> None:
    assert verdicts(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10 / 3 = 3.33", [True]),  # rounded to the places written
        ("10 / 3 = 3.4", [False]),
        ("10 / 3 = 3", [False]),  # an integer must be exact
        ("10 / 3 ≈ 3.35", [True]),  # within 1 %
        ("10 / 3 ≈ 3.5", [False]),
    ],
)
def test_rounding_and_approximation(text: str, expected: list[bool]) -> None:
    assert verdicts(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "2x + 3 = 7",  # algebra
        "n + 3 = 5",
        "cost - 3 = 12",
        "x = 5",
        "3 apples and 4 = 7",  # two numbers joined by a word, not an operator
        "9^0.5 = 3",  # non-integer exponent
        "10^1000000 = 1",  # too large
        "1/0 = 5",
        "no numbers here at all",
        "3 4 = 7",
    ],
)
def test_what_is_not_arithmetic_is_skipped(text: str) -> None:
    assert check_equations(text) == []


def test_what_follows_number_and_is_skipped() -> None:
    assert verdicts("3 = 3 and 4 = 7") == [True]  # conservative: "4 = 7" may be "3 and 4 = 7"


def test_step_grades() -> None:
    assert isinstance(PRM, ProcessRewardModel)
    assert PRM.grade_step(TASK, [], thought("20 - 3 = 17")) == 1.0
    assert PRM.grade_step(TASK, [], thought("20 - 3 = 17, so 17 * 2 = 35")) == 0.0
    assert PRM.grade_step(TASK, [], thought("I will think about it")) == NO_EQUATION_GRADE


def test_call_arguments_and_answers_are_read() -> None:
    call = ToolCall(id="c", name="note", arguments={"text": "2 + 2 = 5"})
    step = Step(index=0, raw_text="", action="tool_call", call=call)
    assert PRM.grade_step(TASK, [], step) == 0.0
    assert PRM.grade_step(TASK, [], answer(0, "20 - 3 = 17")) == 1.0


def test_a_false_equation_caps_correctness() -> None:
    right = trace(TASK, [thought("20 * 15% = 3"), answer(1, "20 - 3 = 17")], final_answer="17")
    wrong = trace(TASK, [thought("20 * 15% = 4"), answer(1, "20 - 3 = 17")], final_answer="17")
    assert PRM.evaluate(right, TASK).correctness == RulePRM().evaluate(right, TASK).correctness == 1.0
    assert PRM.evaluate(wrong, TASK).correctness == 0.5


@given(st.text(max_size=300))
def test_extraction_never_raises(text: str) -> None:
    check_equations(text)


ARITHMETIC = st.text(alphabet="0123456789+-*/^()=%., x$kg×÷≈\n", max_size=80)


@given(ARITHMETIC)
def test_extraction_never_raises_on_arithmetic_soup(text: str) -> None:
    check_equations(text)


OPERATORS = st.sampled_from(["+", "-", "*", "×", "x"])


@given(st.integers(-(10**6), 10**6), OPERATORS, st.integers(0, 10**6), st.integers(1, 1000))
def test_true_results_are_accepted_and_perturbed_ones_refused(a: int, op: str, b: int, shift: int) -> None:
    result = {"+": a + b, "-": a - b}.get(op, a * b)
    left = f"{a} {op} {b}"
    assert verdicts(f"{left} = {result}") == [True]
    assert verdicts(f"{left} = {result + shift}") == [False]


@given(st.integers(0, 10**5), st.integers(0, 10**4), st.integers(1, 50))
def test_thousands_commas_and_percentages(a: int, b: int, shift: int) -> None:
    assert verdicts(f"{a:,} + {b:,} = {a + b:,}") == [True]
    assert verdicts(f"{a:,} + {b:,} = {a + b + shift:,}") == [False]
    assert verdicts(f"{b}% of 200 = {b * 2}") == [True]
    assert verdicts(f"{b}% of 200 = {b * 2 + shift}") == [False]
