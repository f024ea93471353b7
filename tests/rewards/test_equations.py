"""The equation reader: forms from real solutions, what it skips, exact checking, and its properties.

Each sentence of ``REAL_SENTENCES`` is quoted from ProcessBench (Zheng et al. 2024): "gsm8k-149 step 3"
names a record and step of ``processbench_dev.jsonl`` (all from its development half, the even lines);
"GSM8K split" names a sentence of ProcessBench's GSM8K split outside those rows.
"""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rewards._equations import check_equations


def verdicts(text: str) -> list[bool]:
    return [equation.holds for equation in check_equations(text)]


REAL_SENTENCES = [
    # LaTeX inline and display math
    ("gsm8k-149 step 3", r"Solomon has \(20 + 8 = 28\) marbles in total at the store.", [True]),
    ("GSM8K split", r"\(18 - 6 = 13\)", [False]),
    (
        "math-8 step 2",
        r"\( n = 1 \cdot 3^3 + 2 \cdot 3^2 + 2 \cdot 3^1 + 2 \cdot 3^0 = 81 + 18 + 6 + 2 = 107 \).",
        [False, True],
    ),
    ("math-523 step 0", r"This is given by $\sqrt{(2-10)^2+(5-5)^2}=\sqrt{64}=8$.", [True, True]),
    (
        "math-32 step 2",
        r"\frac{1-\frac{1}{2^{10}}}{1-\frac{1}{2}}=\frac{1-\frac{1}{1024}}{\frac{1}{2}}=\frac{1024-1}{512}=1.9999995\).",
        [True, True, False],
    ),
    (
        "gsm8k-193 step 3",
        r"\[ \text{Half of Combined Points (Naomi + Brianna)} = \frac{153}{2} = 76.5 \] "
        r"\[ \text{Yuri's Points} = 76.5 + 10 = 86.5 \]",
        [True, True],
    ),
    # escaped currency, thousands separators
    ("gsm8k-173 step 0", r"\[ 2 \text{ trips} \times \$2.20/\text{trip} = \$4.40 \]", [True]),
    ("GSM8K split", r"\$20 - \$13.00 = \$6.00", [False]),
    ("gsm8k-357 step 3", r"\[ \$30,000 + \$1,800 = \$31,800 \]", [True]),
    ("gsm8k-357 step 1", r"\(15,000 \times 2 = \$30,000\).", [True]),
    # parenthesised labels
    ("gsm8k-371 step 4", "30 (total slices) - 15 (slices eaten) = 15.", [True]),
    (
        "gsm8k-393 step 2",
        "Remaining balance = $2200 (total to be returned) - $1980 (total payments) = $220.",
        [True],
    ),
    (
        "gsm8k-169 step 2",
        r"\[ 40 \text{ (Alani)} + 80 \text{ (Braylen)} + 120 \text{ (Margot)} = 240 \text{ stories} \]",
        [True],
    ),
    ("GSM8K split", "7995 (total cookies) - 2595 (rainbow cookies) = 4500", [False]),
    # \text{} units, per-units
    (
        "gsm8k-143 step 1",
        r"\( 200 \text{ bananas/month} \times 3 \text{ monkeys} = 600 \text{ bananas} \).",
        [True],
    ),
    (
        "gsm8k-143 step 5",
        r"\[ 600 \text{ bananas} + 800 \text{ bananas} + 500 \text{ bananas} = 1900 \text{ bananas} \]",
        [True],
    ),
    ("GSM8K split", r"4 \text{ feet} \times 12 = 48", [True]),
    ("gsm8k-165 step 2", r"\[ 2 \text{ months} \times \$12/\text{month} = \$24 \]", [True]),
    (
        "gsm8k-183 step 1",
        "30 cycles/day × 5 tasks/cycle = 150 tasks/day. 150 tasks/day × $1.20/task = $180/day (per cycle).",
        [True, True],
    ),
    ("gsm8k-187 step 2", "40 bananas ÷ 0.80 bananas/each = 50 individual bananas.", [True]),
    # labelled quantities and unit definitions
    ("GSM8K split", "5 pairs = 5 * 2 = 10 shoes", [True]),
    ("GSM8K split", "1 foot = 12 inches", []),
    # variables next to numbers
    ("GSM8K split", "2m = 4", []),
    ("gsm8k-197 step 2", "This simplifies to 5J + 20 = 100.", []),
    (
        "gsm8k-189 step 3",
        r"\[ x + 2x = \$37.50 \] \[ 3x = \$37.50 \] Solving for \(x\): \[ x = \frac{\$37.50}{3} = \$12.50 \]",
        [True],
    ),
    # percent conventions
    ("GSM8K split", "0.2 * 100 = 20%", [True]),
    ("gsm8k-389 step 0", r"\[ 20\% \times 100 = 0.20 \times 100 = 20 \]", [True, True]),
    # ordinals
    ("GSM8K split", "1st - 5 = 6th", []),
    (
        "gsm8k-157 step 0",
        "From January 1st to July 18th, there are 203 days. Then from July 19th to December 31st, there are "
        "183 days. The total number of days is 203 + 183 = 386 days.",
        [True],
    ),
    # division with a remainder, floors and ceilings, mixed numbers, approximations
    (
        "math-0 step 0",
        "194 ÷ 11 = 17 with a remainder of 9. This means that 194 can be written as: 194 = 11 × 17 + 9.",
        [False, False],
    ),
    ("math-54 step 0", r"$$355\div 6=58\;\mathrm{R}\;5.$$", [False]),
    ("math-74 step 1", r"So, \(\lceil -8.8 \rceil = -9\).", [False]),
    (
        "math-82 step 1",
        r"\[ \frac{100}{11} \approx 9.0909 \quad \Rightarrow \quad \lceil 9.0909 \rceil = 9 \]",
        [True, False],
    ),
    ("math-46 step 1", r"\[ k > \frac{20}{7} = 2\frac{6}{7} \]", []),
    ("math-88 step 5", r"\[5^8 \approx 10^8\]", [False]),
    # chains
    ("gsm8k-147 step 1", "In 8 years, his cousin will be 2 * 22 - 8 = 46 - 8 = 38 years old.", [False, True]),
    ("math-4 step 2", "= 6 * 720 * 120 * 6 = 6 * 518400 = 3104400.", [True, False]),
]


@pytest.mark.parametrize(
    ("source", "text", "expected"), REAL_SENTENCES, ids=[s for s, _, _ in REAL_SENTENCES]
)
def test_forms_of_real_solutions(source: str, text: str, expected: list[bool]) -> None:
    assert verdicts(text) == expected


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
        ("√4 = 2; √(9) + 1 = 5", [True, False]),
        ("\\lfloor 7/2 \\rfloor + 1 = 4; 2\\lceil 2.5 \\rceil = 5", [True, False]),
        # list bullets are not signs; a sign glued to its number still is
        ("- 2 + 3 = 5", [True]),
        ("Steps:\n- 2 + 3 = 5\n* 4 - 1 = 2", [True, False]),
        ("-2 + 3 = 1", [True]),
        # a run glued to a number outside it holds part of a side: skipped, never judged
        ("3:4 = 0.75", []),
        ("so 2,5 + 1 = 3,5", []),
        ("1 + 1 = 2,5", []),
        ("1,000 + 1 = 1,001; ratio 1: 2 + 2 = 4", [True, True]),
        ("a_1 = 3; f'(2) = 5", []),
        # one false claim in a chain does not hide the others
        ("f(2) = 2^2 + 1 = 6", [False]),
    ],
)
def test_equations_are_found_and_checked_exactly(text: str, expected: list[bool]) -> None:
    assert verdicts(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10 / 3 = 3.33", [True]),  # rounded to the places written
        ("10 / 3 = 3.4", [False]),
        ("10 / 4 = 3.5", [False]),
        ("10 / 3 ≈ 3.35", [True]),  # within 1 %
        ("10 / 3 ≈ 3.5", [False]),
        ("1234 ≈ 1200; 1234 ≈ 2000", [True, False]),  # after ≈ an integer is rounded to its last digit
        ("2 / 3 = 67%; 2 / 3 = 66%", [True, False]),  # a whole percent is rounded too
        ("0.2 * 100 = 20%; 0.2 * 100 = 30%", [True, False]),  # percent as a label
    ],
)
def test_rounding_approximation_and_percent_labels(text: str, expected: list[bool]) -> None:
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
        "√8 = 3",  # irrational root
        "no numbers here at all",
        "3 4 = 7",
        "10 / 3 = 3",  # a whole quotient: "10 / 3 = 3 full boxes"
        "50 / 3 = 17 buses",
        "2 feet + 6 inches = 30 inches",  # unlike units added
        "$50 + 20% = $60",  # a percent added to a number
        "3 + 4 = 7 (2)",  # an equation's number
        "twice 3 + 2 = 10",  # a verbal operation before the run
        "half of 80 = 40",
        "20% more than 50 = 60",
        "Week 1 = 5 + 3",  # a number that names
        "2 million = 2,000,000",
        "3 cubed + 1 = 28",
        "\\sqrt[3]{8} = 2",  # unknown commands are unknowns
        "\\pi \\times 2 = 6.28",
        "1 + 2 + \\cdots + 10 = 55",
        "1 + 2 + ... + 10 = 55",
        "\\log_{2} 8 = 3",
        "\\binom{5}{2} = 10",
        "3! + 2 = 8",
        "\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix} = 3",
        "17 remainder 9 = 5",
        "1 dozen = 12",
        "1 hour = 60 minutes",
    ],
)
def test_what_is_not_arithmetic_or_is_ambiguous_is_skipped(text: str) -> None:
    assert check_equations(text) == []


def test_a_running_total_keeps_its_last_step() -> None:
    assert verdicts("3 * 4 = 12 + 5 = 17") == [True]
    assert verdicts("3 * 4 = 12 + 5 = 18") == [False]


def test_a_division_with_a_remainder_is_checked_as_one() -> None:
    assert verdicts("194 ÷ 11 = 17 with a remainder of 7") == [True]
    assert verdicts("355 / 6 = 59 R 1; 355 / 6 = 59 remainder 2") == [True, False]
    assert verdicts("355 / 6 = 58 remainder 7") == [False]  # a remainder is below the divisor


def test_what_follows_number_and_is_skipped() -> None:
    assert verdicts("3 = 3 and 4 = 7") == [True]  # conservative: "4 = 7" may be "3 and 4 = 7"


@given(st.text(max_size=300))
def test_extraction_never_raises(text: str) -> None:
    check_equations(text)


SOUP = st.text(alphabet="0123456789+-*/^()=%., x$kg×÷≈\n", max_size=80)
LATEX_SOUP = st.lists(
    st.sampled_from(
        ["\\frac", "{", "}", "\\(", "\\)", "\\[", "\\]", "\\text{ kg}", "\\times", "\\sqrt", "[3]",
         "\\left(", "\\right)", "\\$", "\\%", "{,}", "^", "_", "\\begin{pmatrix}", "\\end{pmatrix}",
         "\\lceil", "\\rceil", "=", "3", "12", "0.5", " ", "\\", "\\cdot", "\\boxed{", "&", "\\\\"]
    ),
    max_size=40,
).map("".join)  # fmt: skip


@given(SOUP | LATEX_SOUP)
def test_extraction_never_raises_on_arithmetic_and_latex_soup(text: str) -> None:
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


# --------------------------------------------------------------------------- notations

Tree = int | tuple[str, "Tree", "Tree"]
LATEX_TIMES = ("\\times", "\\cdot", "*")
PLAIN_TIMES = ("*", "×", "·", "x")


@st.composite
def trees(draw: st.DrawFn, depth: int = 0) -> Tree:
    if depth > 0 and (depth >= 3 or draw(st.booleans())):
        return draw(st.integers(0, 5000))
    return (draw(st.sampled_from("+-*/")), draw(trees(depth + 1)), draw(trees(depth + 1)))


def value(tree: Tree) -> Fraction:
    if isinstance(tree, int):
        return Fraction(tree)
    op, left, right = tree
    a, b = value(left), value(right)
    return {"+": a + b, "-": a - b, "*": a * b}.get(op) if op != "/" else a / b  # type: ignore[return-value]


def divides_by_zero(tree: Tree) -> bool:
    if isinstance(tree, int):
        return False
    op, left, right = tree
    return divides_by_zero(left) or divides_by_zero(right) or (op == "/" and value(right) == 0)


@st.composite
def notations(draw: st.DrawFn) -> dict[str, str]:
    latex = draw(st.booleans())
    return {
        "latex": "yes" if latex else "",
        "times": draw(st.sampled_from(LATEX_TIMES if latex else PLAIN_TIMES)),
        "divide": draw(st.sampled_from(("\\frac", "\\div", "/") if latex else ("/", "÷"))),
        "open": draw(st.sampled_from(("(", "\\left(") if latex else ("(",))),
        "currency": draw(st.sampled_from(("", "\\$") if latex else ("", "$"))),
        "unit": draw(st.sampled_from(("", "\\text{ apples}", " \\text{kg}") if latex else ("", " apples"))),
        "commas": draw(st.sampled_from(("", ",", "{,}") if latex else ("", ","))),
        "wrap": draw(st.sampled_from(("\\( {} \\)", "\\[ {} \\]", "$$ {} $$") if latex else ("{}",))),
        "prefix": draw(st.sampled_from(("", "So ", "The total is ", "Therefore, "))),
    }


def number(n: int, notation: dict[str, str]) -> str:
    digits = f"{n:,}".replace(",", notation["commas"]) if notation["commas"] else str(n)
    return f"{notation['currency']}{digits}{notation['unit']}"


def render(tree: Tree, notation: dict[str, str]) -> str:
    if isinstance(tree, int):
        return number(tree, notation)
    op, left, right = tree
    if op == "/" and notation["divide"] == "\\frac":
        return f"\\frac{{{render(left, notation)}}}{{{render(right, notation)}}}"
    close = "\\right)" if notation["open"] == "\\left(" else ")"
    parts = [render(side, notation) for side in (left, right)]
    parts = [
        part if isinstance(side, int) else f"{notation['open']}{part}{close}"
        for part, side in zip(parts, (left, right), strict=True)
    ]
    symbol = {"*": notation["times"], "/": notation["divide"]}.get(op, op)
    return f"{parts[0]} {symbol} {parts[1]}"


def result(exact: Fraction, notation: dict[str, str], places: int) -> str:
    if exact.denominator == 1:
        return ("-" if exact < 0 else "") + number(abs(exact.numerator), notation)
    rounded = round(exact, places)
    return f"{float(rounded):.{places}f}"


@given(trees(), notations(), st.integers(2, 4))
def test_a_true_equation_in_any_supported_notation_is_found_and_holds(
    tree: Tree, notation: dict[str, str], places: int
) -> None:
    if isinstance(tree, int) or divides_by_zero(tree):
        return
    equation = f"{render(tree, notation)} = {result(value(tree), notation, places)}"
    text = notation["prefix"] + notation["wrap"].format(equation)
    assert verdicts(text) == [True], text


@given(trees(), notations(), st.integers(1, 1000))
def test_a_wrong_whole_result_in_any_supported_notation_is_refused(
    tree: Tree, notation: dict[str, str], shift: int
) -> None:
    if isinstance(tree, int) or divides_by_zero(tree) or value(tree).denominator != 1:
        return
    wrong = value(tree) + shift
    equation = f"{render(tree, notation)} = {result(wrong, notation, 0)}"
    assert verdicts(notation["prefix"] + notation["wrap"].format(equation)) == [False], equation
