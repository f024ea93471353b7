"""answer_match="math": equivalent forms agree, different values do not, nothing raises or hangs."""

from __future__ import annotations

import threading
import time
from fractions import Fraction

import pytest
from _reward_builders import answer, task, trace
from hypothesis import given, settings
from hypothesis import strategies as st

from rewards import answers_match, outcome_reward
from rewards._math import MAX_ANSWER_CHARS, math_equivalent

MATH = settings(deadline=None, max_examples=60)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("0.5", "1/2"),
        ("50%", "1/2"),
        ("1/2", "50%"),
        ("$50\\%$", "0.5"),
        ("\\boxed{\\frac{1}{2}}", "0.5"),
        ("\\frac12", "50%"),
        ("$\\dfrac{3}{4}$", "75%"),
        ("The final answer is \\boxed{\\sqrt{2}}", "\\sqrt{2}"),
        ("\\sqrt{8}/2", "$\\sqrt{2}$"),
        ("x^2+1", "1+x^2"),
        ("so x = 3", "3"),
        ("first 3, then 5, so the answer is 7", "7"),
        ("1e6", "1000000"),
        ("1{,}000", "1000"),
        ("\\boxed{-\\frac{1}{4}}", "-0.25"),
    ],
)
def test_equivalent_forms_match(given: str, expected: str) -> None:
    assert answers_match(given, [expected], "math")


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("50", "50%"),  # a percent divides by 100; math-verify alone would accept both 50 and 0.5
        ("The answer is $50\\%$", "50"),
        ("-3", "3"),
        ("0.333333", "1/3"),  # a plain number is read exactly
        ("\\boxed{2} was wrong, \\boxed{3}", "2"),  # the last box counts
        ("12", "12:30"),  # not mathematical: compared as text
        ("sirap", "Paris"),  # words are never read as products of symbols
        ("", "1"),
    ],
)
def test_different_values_do_not_match(given: str, expected: str) -> None:
    assert not answers_match(given, [expected], "math")


def test_a_text_answer_is_compared_normalised() -> None:
    assert math_equivalent("paris", "Paris") is None
    assert answers_match("The Paris.", ["paris"], "math")


@pytest.mark.parametrize(
    "monster", ["$9^{9^{9^9}}$", "\\boxed{10^{10^{10}}}", "100000!", "\\prod_{i=1}^{10^{9}} i", "9**9**9**9"]
)
def test_answers_sympy_cannot_evaluate_quickly_are_refused_quickly(monster: str) -> None:
    started = time.perf_counter()
    assert not answers_match(monster, ["3"], "math")
    assert not answers_match("3", [monster], "math")
    assert time.perf_counter() - started < 5


def test_only_the_tail_of_a_huge_answer_is_read() -> None:
    assert answers_match("x " * MAX_ANSWER_CHARS + "so the answer is 42", ["42"], "math")
    assert not answers_match("42 " + "x " * MAX_ANSWER_CHARS, ["42"], "math")


def test_math_matching_works_outside_the_main_thread() -> None:
    # math-verify's own timeout uses signal.alarm, which raises ValueError off the main thread.
    results: list[object] = []

    def score() -> None:
        try:
            results.append(answers_match("\\boxed{\\frac{1}{2}}", ["50%"], "math"))
            results.append(answers_match("$\\sqrt{4}$", ["2"], "math"))
        except Exception as exc:  # reported below, in the main thread
            results.append(exc)

    worker = threading.Thread(target=score)
    worker.start()
    worker.join(timeout=60)
    assert results == [True, True]


def test_outcome_reward_uses_the_math_comparison() -> None:
    the_task = task(expected="\\frac{3}{4}", match="math")
    right = outcome_reward(trace(the_task, [answer(0, "It is 75%.")]), the_task)
    wrong = outcome_reward(trace(the_task, [answer(0, "It is 0.7.")]), the_task)
    assert (right.value, wrong.value) == (1.0, 0.0)
    assert "(math)" in right.reason


# --------------------------------------------------------------------------- properties

# Small denominators keep distinct values more than 1e-6 apart (math-verify rounds to 6 places).
values = st.fractions(min_value=-(10**6), max_value=10**6, max_denominator=16)


def forms(value: Fraction, *, sentences: bool = True) -> list[str]:
    """``value`` as a fraction, in LaTeX, boxed, as a decimal and a percent, and (``sentences``) in
    a sentence, as a model's answer may put it."""
    sign = "-" if value < 0 else ""
    num, den = abs(value.numerator), value.denominator
    written = [
        f"{value.numerator}/{den}",
        f"{sign}\\frac{{{num}}}{{{den}}}",
        f"$\\dfrac{{{value.numerator}}}{{{den}}}$",
    ]
    if sentences:
        written.append(f"The answer is \\boxed{{{sign}\\frac{{{num}}}{{{den}}}}}.")
    if (value * 10**4).denominator == 1:  # a decimal that ends within four places
        decimal = f"{float(value):.4f}".rstrip("0").rstrip(".")
        written += [decimal, f"so it is ${decimal}$"] if sentences else [decimal]
    if (value * 100 * 10**4).denominator == 1:
        percent = f"{float(value * 100):.4f}".rstrip("0").rstrip(".")
        written += [f"{percent}%", f"\\boxed{{{percent}\\%}}"]
    return written


@MATH
@given(values, st.data())
def test_equivalent_forms_agree(value: Fraction, data: st.DataObject) -> None:
    written = data.draw(st.sampled_from(forms(value)))
    expected = data.draw(st.sampled_from(forms(value, sentences=False)))
    assert answers_match(written, [expected], "math")


@MATH
@given(values, values, st.data())
def test_different_values_disagree(first: Fraction, second: Fraction, data: st.DataObject) -> None:
    written = data.draw(st.sampled_from(forms(first)))
    expected = data.draw(st.sampled_from(forms(second, sentences=False)))
    assert answers_match(written, [expected], "math") == (first == second)


latexish = st.text(alphabet="0123456789+-*/^_{}()[]$\\%.,=! xyabcfrqtsq", max_size=60)


@MATH
@given(st.one_of(st.text(max_size=80), latexish), st.one_of(st.text(max_size=20), latexish))
def test_math_matching_never_raises_on_arbitrary_text(given_text: str, expected: str) -> None:
    assert answers_match(given_text, [expected], "math") in (True, False)
