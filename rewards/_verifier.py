"""The verifier PRM: every equation a step writes is checked with exact rational arithmetic.

A step's text (its thought, its answer, and the string arguments of its call) is scanned for
equations: ``a op b = c``, chains ``a + b = c = d``, ``x% of y = z``. Numbers may carry thousands
commas, decimals, a sign, a percent sign (15% is 15/100), a currency symbol or a unit (``$12``,
``12 kg``, ``12 apples``). Operators: ``+ - * / ^ **``, ``×  ·  x  ÷``, the words plus, minus, times,
multiplied by, divided by, LaTeX ``\\times \\cdot \\div \\frac{a}{b}``, parentheses, and a number
before a parenthesis multiplies. Both sides are evaluated with :class:`fractions.Fraction` from a
parsed :mod:`ast` (never ``eval``), with bounded sizes and exponents.

What counts as an equation, and what is skipped (a skipped equation is neither right nor wrong):

- a word stops an expression unless it is a unit, i.e. follows a number (at most
  :data:`MAX_UNIT_WORDS` words; connectives such as "and", "so", "is" are never units);
- a letter or word used as an operand (``2x + 3 = 7``, ``n + 3 = 5``, ``cost - 3 = 12``) makes the
  expression algebra, not arithmetic: skipped;
- two numbers joined by a connective ("3 and 4 = 7", "add 3 to 4 = 7") are skipped, so the "4 = 7"
  they leave is not read as a claim;
- a side that does not parse (``3 4 = 7``), divides by zero, or has a non-integer or too large
  exponent is skipped, as is every equation of an over-long expression.

Checking: ``=`` is exact, with one allowance for rounding: a side that is a bare decimal literal with
``d`` decimal places (``3.33``, ``33.3%``) matches a value within half a unit of its last place
(``10 / 3 = 3.33`` and ``= 3.3`` hold, ``= 3.4`` does not; an integer must be exact). ``≈`` (or ``~=``) holds
within :data:`APPROX_RELATIVE_TOLERANCE` of the larger side, or the rounding allowance.

Grades: a step with a false equation grades 0.0; a step whose equations are all true grades 1.0; a
step with no checkable equation grades :data:`NO_EQUATION_GRADE` (0.5), neutral: the verifier has no
evidence either way, and a step-error threshold of 0.5 (``grade < 0.5`` is an error) reads it as not
wrong. Attributes come from :class:`RulePRM`, with correctness capped by the share of
equation-bearing steps whose equations all hold.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from rewards._cot import make_cot_reward
from rewards._prm import RulePRM
from rewards._process import make_process_reward
from sandbox.records import Attributes, Step, Task, Trace

NO_EQUATION_GRADE = 0.5
FALSE_EQUATION_GRADE = 0.0
TRUE_EQUATIONS_GRADE = 1.0
APPROX_RELATIVE_TOLERANCE = Fraction(1, 100)
MAX_UNIT_WORDS = 2
MAX_DIGITS = 60  # longest number literal read
MAX_EXPONENT = 256
MAX_BITS = 4096  # numerator or denominator larger than this: unverifiable
MAX_TOKENS = 200  # longest expression read (per segment)

# Words that join clauses or numbers: never a unit.
# fmt: off
CONNECTIVES = frozenset((
    "and", "or", "so", "then", "thus", "hence", "therefore", "is", "are", "was", "were", "be", "equals",
    "equal", "makes", "make", "gives", "give", "get", "gets", "got", "we", "i", "you", "he", "she", "it",
    "they", "has", "have", "had", "which", "that", "this", "to", "from", "with", "by", "of", "than", "over",
    "into", "per", "for", "in", "on", "at", "as", "if", "but", "plus", "minus", "times", "multiplied",
    "divided", "add", "adding", "subtract", "subtracting", "total", "left", "remaining",
))
# fmt: on
# Connectives that, between two numbers, make them operands of an unwritten operation.
# Marks that glue the number after them to what comes before: 3:4, √4, 2,5 (a decimal comma).
GLUE_MARKS = frozenset(":,√∛∜")
# A line that starts with one of these and a space is a list item, not a signed number.
BULLETS = frozenset("-*+")
JOINING_WORDS = frozenset(("and", "or", "to", "from", "with", "by", "of", "than", "over", "into"))
SINGLE_LETTER_UNITS = frozenset("mgslhL")
OPERATOR_WORDS = {"plus": "+", "minus": "-", "times": "*"}
OPERATOR_PHRASES = {("multiplied", "by"): "*", ("divided", "by"): "/"}

_LATEX = [
    (re.compile(r"\\frac\s*\{([^{}]*)\}\s*\{([^{}]*)\}"), r"((\1)/(\2))"),
    (re.compile(r"\\(?:times|cdot)"), "*"),
    (re.compile(r"\\div"), "/"),
    (re.compile(r"\\(?:left|right)|\\[,;!]"), ""),
]
_CHARACTERS = str.maketrans(
    {"×": "*", "·": "*", "⋅": "*", "∗": "*", "÷": "/", "−": "-", "{": "(", "}": ")", "≃": "≈", "≅": "≈"}
)
_TOKEN = re.compile(
    r"""
    (?P<num>(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?!\d)|\.\d+)(?P<pct>\s*%)?
    |(?P<op>\*\*|[-+*/^])
    |(?P<lp>\()|(?P<rp>\))
    |(?P<approx>≈|~=|=~)
    |(?P<eq>=)
    |(?P<word>[^\W\d_]+)
    |(?P<currency>[$€£¥₹])
    |(?P<space>[^\S\n]+)
    |(?P<other>.)
    """,
    re.VERBOSE | re.DOTALL,
)


@dataclass(frozen=True)
class _Token:
    kind: str  # num, op, lp, rp, eq, approx, word, unit, var, punct
    text: str
    attached: bool = False  # no space before it
    value: Fraction | None = None
    places: int = 0  # decimal places written, for the rounding allowance
    percent: bool = False


@dataclass(frozen=True)
class Equation:
    """One checked equality: the text of each side and whether it holds."""

    left: str
    right: str
    relation: str  # "=" or "≈"
    holds: bool


class _Unverifiable(Exception):
    """A side that cannot be evaluated within bounds: the equation is skipped."""


def check_equations(text: str) -> list[Equation]:
    """Every checkable equation in ``text``, each with its verdict. Never raises."""
    tokens = _classify(_tokenize(_normalize(text)))
    found: list[Equation] = []
    for segment in _segments(tokens):
        found += _check_segment(segment)
    return found


def step_text(step: Step) -> str:
    """The text of a step the verifier reads: thought, answer, and its call's string arguments."""
    parts = [step.thought, step.answer or ""]
    if step.call is not None:
        parts += [value for value in _strings(step.call.arguments)]
    if not step.thought and step.answer is None and step.call is None:
        parts.append(step.raw_text)
    return "\n".join(part for part in parts if part)


class VerifierPRM:
    """A PRM that checks a step's arithmetic; see the module docstring for every rule."""

    name = "verifier-prm"
    version = "2"  # 2: list bullets are not signs; runs glued to an outside number are skipped

    def __init__(self) -> None:
        self._rules = RulePRM()

    def grade_step(self, task: Task, steps_so_far: Sequence[Step], step: Step) -> float:
        """0.0 with a false equation, 1.0 with only true ones, 0.5 with none."""
        equations = check_equations(step_text(step))
        if not equations:
            return NO_EQUATION_GRADE
        return TRUE_EQUATIONS_GRADE if all(eq.holds for eq in equations) else FALSE_EQUATION_GRADE

    def evaluate(self, trace: Trace, task: Task) -> Attributes:
        """The rule PRM's attributes, correctness capped by the share of steps with sound arithmetic."""
        attributes = self._rules.evaluate(trace, task)
        checked = [check_equations(step_text(step)) for step in trace.steps]
        bearing = [equations for equations in checked if equations]
        if not bearing:
            return attributes
        sound = sum(all(eq.holds for eq in equations) for equations in bearing) / len(bearing)
        return attributes.model_copy(update={"correctness": min(attributes.correctness, sound)})


# --------------------------------------------------------------------------- scanning


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _normalize(text: str) -> str:
    for pattern, replacement in _LATEX:
        text = pattern.sub(replacement, text)
    return text.translate(_CHARACTERS)


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    attached = False
    for match in _TOKEN.finditer(text):
        kind = match.lastgroup or "other"
        if kind == "pct":  # lastgroup is the last group that matched; a percent belongs to its number
            kind = "num"
        if kind == "space":
            attached = False
            continue
        if kind == "currency":  # a currency symbol is a unit written before the number
            attached = False
            continue
        if kind == "num":
            tokens.append(_number(match.group("num"), bool(match.group("pct")), attached))
        else:
            tokens.append(_Token("punct" if kind == "other" else kind, match.group(kind), attached))
        attached = True
    return tokens


def _number(text: str, percent: bool, attached: bool) -> _Token:
    digits = text.replace(",", "")
    if len(digits) > MAX_DIGITS:
        return _Token("punct", text, attached)
    whole, _, fraction = digits.partition(".")
    value = Fraction(int(whole or "0") * 10 ** len(fraction) + int(fraction or "0"), 10 ** len(fraction))
    if percent:
        value /= 100
    return _Token("num", text + "%" if percent else text, attached, value, len(fraction), percent)


def _classify(tokens: list[_Token]) -> list[_Token]:
    """Resolve words: operators, units, variables (operands: algebra) or plain words (breaks)."""
    out: list[_Token] = []
    units = 0  # unit words since the last number
    for index, token in enumerate(tokens):
        if token.kind != "word":
            out.append(token)
            units = 0
            continue
        word = token.text.lower()
        before = out[-1] if out else None
        after = tokens[index + 1] if index + 1 < len(tokens) else None
        kind, text = _word_kind(word, token, before, after, units)
        if kind == "op" and word == "by" and before is not None and before.kind == "op":
            continue
        units = units + 1 if kind == "unit" else 0
        out.append(_Token(kind, text, token.attached))
    return out


def _word_kind(
    word: str, token: _Token, before: _Token | None, after: _Token | None, units: int
) -> tuple[str, str]:
    prev_kind = before.kind if before is not None else ""
    next_kind = after.kind if after is not None else ""
    if word in OPERATOR_WORDS:
        return "op", OPERATOR_WORDS[word]
    if after is not None and after.kind == "word" and (word, after.text.lower()) in OPERATOR_PHRASES:
        return "op", OPERATOR_PHRASES[(word, after.text.lower())]
    if word == "by" and prev_kind == "op":
        return "op", ""
    if word == "x" and prev_kind in ("num", "rp", "unit") and next_kind in ("num", "lp"):
        return "op", "*"
    if word == "of" and before is not None and (before.kind == "percent" or before.percent):
        return "op", "*"
    if word == "percent" and before is not None and before.kind == "num" and not before.percent:
        return "percent", word
    letter_unit = token.text in SINGLE_LETTER_UNITS and prev_kind == "num"
    operand = (token.attached and prev_kind == "num") or _beside_operator(prev_kind, next_kind)
    if len(word) == 1 and operand and not letter_unit:
        return "var", word
    after_number = prev_kind in ("num", "unit", "percent") and units < MAX_UNIT_WORDS
    if after_number and word not in CONNECTIVES and (len(word) > 1 or letter_unit):
        return "unit", word
    if prev_kind in ("op", "lp") or next_kind in ("op", "lp"):
        return "var", word  # a word as an operand: algebra, not arithmetic
    return "word", word


def _beside_operator(prev_kind: str, next_kind: str) -> bool:
    return prev_kind in ("op", "eq", "approx", "lp") or next_kind in ("op", "eq", "approx", "rp", "lp")


def _segments(tokens: list[_Token]) -> Iterator[list[_Token]]:
    """Runs of arithmetic tokens between breaks, dropping runs that are algebra, joined by a word, or
    glued to a number outside them (``3:4``, ``√4``, a decimal comma ``2,5``): such a run holds only
    part of a side."""
    current: list[_Token] = []
    joined = False  # this run follows "NUMBER connective" or a glue mark, with nothing else between
    for index, token in enumerate(tokens):
        if token.kind in ("word", "punct"):
            following = tokens[index + 1] if index + 1 < len(tokens) else None
            glued_after = _glues(token, following)
            if current and not joined and not _is_algebra(current) and not glued_after:
                yield current
            joined = glued_after or (
                token.kind == "word"
                and token.text in JOINING_WORDS
                and bool(current)
                and current[-1].kind in ("num", "rp")
                and following is not None
                and following.kind in ("num", "lp", "op")
            )
            current = []
            continue
        if token.kind == "op" and token.text in BULLETS and _starts_line(tokens, index, current):
            continue  # a list bullet ("- 2 + 3 = 5"), not a sign
        if token.kind in ("unit", "percent"):
            if token.kind == "percent" and current and current[-1].kind == "num":
                number = current[-1]
                current[-1] = _Token(
                    "num", number.text + "%", number.attached, (number.value or 0) / 100, number.places, True
                )
            continue
        current.append(token)
    if current and not joined and not _is_algebra(current):
        yield current


def _glues(mark: _Token, following: _Token | None) -> bool:
    """A ratio colon, a decimal comma or a root sign written with no space before the next number."""
    return (
        mark.kind == "punct"
        and mark.text in GLUE_MARKS
        and following is not None
        and following.attached
        and following.kind in ("num", "lp")
    )


def _starts_line(tokens: list[_Token], index: int, current: list[_Token]) -> bool:
    following = tokens[index + 1] if index + 1 < len(tokens) else None
    line_start = index == 0 or (tokens[index - 1].kind == "punct" and tokens[index - 1].text == "\n")
    return not current and line_start and following is not None and not following.attached


def _is_algebra(segment: list[_Token]) -> bool:
    return any(token.kind == "var" for token in segment) or len(segment) > MAX_TOKENS


def _check_segment(segment: list[_Token]) -> list[Equation]:
    sides: list[list[_Token]] = [[]]
    relations: list[str] = []
    for token in segment:
        if token.kind in ("eq", "approx"):
            sides.append([])
            relations.append("=" if token.kind == "eq" else "≈")
        else:
            sides[-1].append(token)
    values = [_evaluate(side) for side in sides]
    checked: list[Equation] = []
    for index, relation in enumerate(relations):
        left, right = values[index], values[index + 1]
        if left is None or right is None:
            continue
        holds = _holds(left, right, sides[index], sides[index + 1], relation)
        checked.append(Equation(_text(sides[index]), _text(sides[index + 1]), relation, holds))
    return checked


def _holds(
    left: Fraction, right: Fraction, left_side: list[_Token], right_side: list[_Token], relation: str
) -> bool:
    if left == right:
        return True
    slack = max(_rounding_slack(left_side), _rounding_slack(right_side))
    if relation == "≈":
        slack = max(slack, APPROX_RELATIVE_TOLERANCE * max(abs(left), abs(right)))
    return abs(left - right) <= slack


def _rounding_slack(side: list[_Token]) -> Fraction:
    """Half a unit of the last written place, for a side that is one decimal literal (maybe signed)."""
    literal = [token for token in side if token.kind == "num"]
    others = [
        token for token in side if token.kind != "num" and not (token.kind == "op" and token.text == "-")
    ]
    if len(literal) != 1 or others or literal[0].places == 0 or len(side) > 2:
        return Fraction(0)
    slack = Fraction(1, 2 * 10 ** literal[0].places)
    return slack / 100 if literal[0].percent else slack


def _text(side: list[_Token]) -> str:
    return " ".join(token.text for token in side)


# --------------------------------------------------------------------------- evaluation


def _evaluate(side: list[_Token]) -> Fraction | None:
    """The exact value of one side, or None when it is not a bounded arithmetic expression."""
    if not side:
        return None
    numbers: list[Fraction] = []
    pieces: list[str] = []
    previous = ""
    for token in side:
        if token.kind == "lp" and previous in ("num", "rp"):
            pieces.append("*")  # 2(3 + 4)
        if token.kind == "num" and previous == "rp":
            pieces.append("*")  # (3 + 4)2
        if token.kind == "num":
            pieces.append(f"_n[{len(numbers)}]")
            numbers.append(token.value or Fraction(0))
        elif token.kind == "op":
            pieces.append("**" if token.text in ("^", "**") else token.text)
        elif token.kind in ("lp", "rp"):
            pieces.append(token.text)
        else:
            return None
        previous = token.kind
    try:
        tree = ast.parse(" ".join(pieces), mode="eval")
        return _value(tree.body, numbers)
    except (SyntaxError, ValueError, _Unverifiable, ZeroDivisionError, RecursionError, MemoryError):
        return None


def _value(node: ast.AST, numbers: list[Fraction]) -> Fraction:
    if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant):
        return numbers[int(node.slice.value)]
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        operand = _value(node.operand, numbers)
        return -operand if isinstance(node.op, ast.USub) else operand
    if isinstance(node, ast.BinOp):
        left, right = _value(node.left, numbers), _value(node.right, numbers)
        return _bounded(_apply(node.op, left, right))
    raise _Unverifiable(type(node).__name__)


def _apply(op: ast.operator, left: Fraction, right: Fraction) -> Fraction:
    if isinstance(op, ast.Add):
        return left + right
    if isinstance(op, ast.Sub):
        return left - right
    if isinstance(op, ast.Mult):
        return left * right
    if isinstance(op, ast.Div):
        return left / right
    if isinstance(op, ast.Pow):
        return _power(left, right)
    raise _Unverifiable(type(op).__name__)


def _power(base: Fraction, exponent: Fraction) -> Fraction:
    if exponent.denominator != 1 or abs(exponent) > MAX_EXPONENT:
        raise _Unverifiable("exponent")
    size = max(base.numerator.bit_length(), base.denominator.bit_length())
    if size * abs(exponent.numerator) > MAX_BITS:
        raise _Unverifiable("power too large")
    return base**exponent.numerator


def _bounded(value: Fraction) -> Fraction:
    if max(value.numerator.bit_length(), value.denominator.bit_length()) > MAX_BITS:
        raise _Unverifiable("number too large")
    return value


cot_verifier = make_cot_reward(VerifierPRM())
process_verifier = make_process_reward(VerifierPRM())
