"""LaTeX rewritten as plain arithmetic: commands with nested arguments, environments, unknowns."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rewards._latex import OPAQUE, plain_math


@pytest.mark.parametrize(
    ("latex", "plain"),
    [
        ("\\frac{\\frac{1}{2}}{3}", "((((1)/(2)))/(3))"),  # nested arguments
        ("\\dfrac12 + \\tfrac{3}{4}", "((1)/(2)) + ((3)/(4))"),  # one-character arguments
        ("\\sqrt{16}", "√(16)"),
        ("\\lceil 2.5 \\rceil", "⌈ 2.5 ⌉"),
        ("3 \\times 4 \\cdot 5 \\div 6", "3 * 4 * 5 / 6"),
        ("1{,}000\\,000", "1000000"),  # thousands separators
        ("\\$5 and 20\\%", "$5 and 20%"),
        ("90^\\circ", "90 degrees "),
        ("\\left( 2 \\right)", "( 2 )"),
        ("plain text, 3 + 4 = 7", "plain text, 3 + 4 = 7"),  # no LaTeX: unchanged
    ],
)
def test_commands_become_plain_arithmetic(latex: str, plain: str) -> None:
    assert " ".join(plain_math(latex).split()) == " ".join(plain.split())


def test_text_becomes_words_and_delimiters_breaks() -> None:
    assert plain_math("\\( 4 \\text{ feet} \\times 12 = 48 \\)").split() == [
        ";",
        "4",
        "feet",
        "*",
        "12",
        "=",
        "48",
        ";",
    ]
    assert plain_math("\\boxed{22}").split() == ["22"]


def test_equation_environments_keep_their_chains_and_matrices_become_unknowns() -> None:
    aligned = plain_math("\\begin{aligned} a &= 1 + 2 \\\\ &= 3 \\\\ b &= 4 \\end{aligned}")
    assert aligned.split() == [";", "a", "=", "1", "+", "2", "=", "3", ";", "b", "=", "4", ";"]
    assert plain_math("\\begin{pmatrix} 1 & 2 \\end{pmatrix} + 1").split() == [OPAQUE, "+", "1"]


@pytest.mark.parametrize("latex", ["\\pi", "\\sqrt[3]{8}", "\\binom{5}{2}", "\\log_2", "\\cdots", "\\{"])
def test_unknown_commands_become_the_opaque_mark(latex: str) -> None:
    assert OPAQUE in plain_math(latex)


def test_a_number_right_before_a_fraction_is_not_read_as_either_product_or_mixed_number() -> None:
    assert plain_math("2\\frac{6}{7}").startswith("2" + OPAQUE)
    assert OPAQUE not in plain_math("\\frac{20}{7} = \\frac{6}{7} + 2")


@given(st.text(alphabet="\\{}[]()fracsqrtextbegin&$^_ 0123456789=,", max_size=60))
def test_any_text_is_rewritten_without_raising(latex: str) -> None:
    plain_math(latex)
