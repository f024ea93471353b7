"""Equations found in a step's text, each checked with exact rational arithmetic.

:func:`check_equations` rewrites LaTeX as plain text (:func:`rewards._latex.plain_math`), splits the
text into tokens, and reads every run of arithmetic between words for equations: ``a op b = c``,
chains ``a + b = c = d``, ``x% of y = z``. Each side is parsed by :mod:`ast` (never ``eval``) and
evaluated with :class:`fractions.Fraction`, with bounded sizes and exponents.

Numbers may carry thousands commas, decimals, a sign, a percent sign, a currency symbol (``$12``,
``\\$12``) or a unit: up to :data:`MAX_UNIT_WORDS` words after a number (``12 kg``, ``12 apples``),
a per-unit (``$12/month``, ``2 kg/portion``, ``5 days a week``, ``4 per day``) or a label in
parentheses (``7995 (total cookies)``). Operators: ``+ - * / ^ **``, ``× · x ÷``, the words plus,
minus, times, multiplied by, divided by, parentheses (a number before one multiplies), and ``√``.

What is skipped (a skipped equation is neither right nor wrong; a false alarm costs more than a miss):

- a side with a letter or word as an operand (``2x + 3``, ``n + 3``, ``cost - 3``), a letter
  attached to a number (``2m``, ``5J``: a variable or a unit, nobody can tell), an ordinal
  (``1st``, ``6th``), a multiplier word (``2 million``), or the mark of an unknown LaTeX command or
  an ellipsis (``1 + 2 + ... + 10``); the other equations of its chain are still checked;
- a labelled quantity or a unit definition: a left side that is one number with a unit, equated to a
  side that shares none of its unit words (``5 pairs = 5 * 2``, ``1 foot = 12 inches``);
- two numbers joined by a connective ("3 and 4 = 7", "add 3 to 4 = 7"), a run glued to a number
  outside it (``3:4``, ``x_1``, ``f'(2)``, a decimal comma ``2,5``), a run that starts with a binary
  operator (its left operand is outside: ``3! + 2``), a run after a word that labels its first number
  (``Week 1 = 5 + 3``);
- a side that does not parse (``3 4 = 7``), divides by zero, has a non-integer or too large exponent,
  or a root that is not rational; every equation of an over-long run.

Checking: ``=`` is exact, with two allowances. Rounding: a side that is one decimal literal with ``d``
decimal places (``3.33``, ``33.3%``) matches a value within half a unit of its last place (``10 / 3 =
3.33`` holds, ``= 3.4`` does not; an integer must be exact). Percent as a label: an equation with a
percent sign holds if it holds with every ``p%`` read as ``p/100`` or with every ``%`` dropped
(``0.2 * 100 = 20%``). ``≈`` (or ``~=``) holds within :data:`APPROX_RELATIVE_TOLERANCE` of the larger
side, or the rounding allowance.
"""

from __future__ import annotations

import ast
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from fractions import Fraction

from rewards._latex import OPAQUE, plain_math

APPROX_RELATIVE_TOLERANCE = Fraction(1, 100)
ONE = Fraction(1)
MAX_UNIT_WORDS = 2
MAX_DIGITS = 60  # longest number literal read
MAX_EXPONENT = 256
MAX_BITS = 4096  # numerator or denominator larger than this: unverifiable
MAX_SIDE_TOKENS = 200  # longest side read

# Words that join clauses or numbers, or are articles or pronouns: never a unit.
# fmt: off
CONNECTIVES = frozenset((
    "and", "or", "so", "then", "thus", "hence", "therefore", "is", "are", "was", "were", "be", "equals",
    "equal", "makes", "make", "gives", "give", "get", "gets", "got", "we", "i", "you", "he", "she", "it",
    "they", "has", "have", "had", "which", "that", "this", "to", "from", "with", "by", "of", "than", "over",
    "into", "per", "for", "in", "on", "at", "as", "if", "but", "plus", "minus", "times", "multiplied",
    "divided", "add", "adding", "subtract", "subtracting", "total", "left", "remaining", "the", "a", "an",
    "these", "those", "his", "her", "their", "its", "our", "my", "your", "not", "now", "since", "because",
    "when", "where", "while", "after", "before", "more", "less", "fewer", "also", "only", "will", "would",
    "can", "could", "should", "must", "may", "do", "does", "did", "all", "both", "there", "here",
))
# fmt: on
# Words that change the number before them: "2 million = 2,000,000" is not "2 = 2,000,000".
MULTIPLIERS = frozenset(
    (
        "hundred",
        "thousand",
        "million",
        "billion",
        "trillion",
        "dozen",
        "bn",
        "squared",
        "cubed",
        "factorial",
    )
)  # fmt: skip
# Words that, right before a run, may take its first number as an operand.
VERBAL_OPERATIONS = frozenset((
    "twice", "double", "doubled", "triple", "tripled", "thrice", "half", "halved", "quarter", "third",
    "square", "squared", "cube", "cubed", "root", "sqrt", "sum", "product", "difference", "quotient",
    "average", "mean", "than", "of", "percent", "factorial", "log", "reciprocal", "inverse", "negative",
    "opposite", "increased", "decreased", "reduced", "raised", "power",
))  # fmt: skip
# Words that, before a unit word, make a per-unit: "5 days a week", "$4 per day".
PER_WORDS = frozenset(("a", "an", "per", "each", "every"))
# Marks that glue the number after them to what comes before: 3:4, x_1, f'(2), 2,5 (a decimal comma).
GLUE_MARKS = frozenset(":,_'′∛∜")
# A line that starts with one of these and a space is a list item, not a signed number.
BULLETS = frozenset("-*+")
# Connectives that, between two numbers, make them operands of an unwritten operation.
JOINING_WORDS = frozenset(("and", "or", "to", "from", "with", "by", "of", "than", "over", "into"))
SINGLE_LETTER_UNITS = frozenset("mgslhL")
REMAINDER_WORDS = frozenset(("remainder", "rem", "r"))
OPERATOR_WORDS = {"plus": "+", "minus": "-", "times": "*"}
OPERATOR_PHRASES = {("multiplied", "by"): "*", ("divided", "by"): "/"}
FUNCTIONS = {"√": "_sqrt", "⌊": "_floor(", "⌈": "_ceil("}  # a floor or ceiling opens its bracket
ARITHMETIC = frozenset(("num", "op", "lp", "rp", "func"))  # "rem" marks a remainder

_CHARACTERS = str.maketrans(
    {"×": "*", "·": "*", "⋅": "*", "∗": "*", "÷": "/", "−": "-", "–": "-", "{": "(", "}": ")", "≃": "≈",
     "≅": "≈", "°": " degrees ", "…": OPAQUE, "→": ";", "⇒": ";", "⟹": ";", "≠": ";", "≤": ";", "≥": ";"}
)  # fmt: skip
_TOKEN = re.compile(
    r"""
    (?P<ordinal>\d+(?:st|nd|rd|th)(?![^\W\d_]))
    |(?P<num>(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?!\d)|\.\d+)(?P<pct>\s*%)?
    |(?P<opaque>⋯|\.{2,})
    |(?P<op>\*\*|[-+*/^])
    |(?P<lp>\()|(?P<rp>[)⌋⌉])
    |(?P<approx>≈|~=|=~)
    |(?P<relation><=|>=|!=|=>)
    |(?P<eq>==?)
    |(?P<func>[√⌊⌈])
    |(?P<word>[^\W\d_]+)
    |(?P<currency>[$€£¥₹])
    |(?P<space>[^\S\n]+)
    |(?P<other>.)
    """,
    re.VERBOSE | re.DOTALL,
)


@dataclass(frozen=True)
class _Token:
    kind: str  # num, op, lp, rp, eq, approx, func, word, unit, var, punct
    text: str
    attached: bool = False  # no space before it
    value: Fraction | None = None
    places: int = 0  # decimal places written, for the rounding allowance
    percent: bool = False
    label: bool = False  # a unit word that came from a label in parentheses


@dataclass(frozen=True)
class Equation:
    """One checked equality: the text of each side and whether it holds."""

    left: str
    right: str
    relation: str  # "=" or "≈"
    holds: bool


@dataclass(frozen=True)
class _Run:
    tokens: list[_Token]
    after_word: str | None  # the word right before the run, if a word is what broke it off


class _Unverifiable(Exception):
    """A side that cannot be evaluated within bounds: the equation is skipped."""


def check_equations(text: str) -> list[Equation]:
    """Every checkable equation in ``text``, each with its verdict. Never raises."""
    tokens = _classify(_drop_labels(_tokenize(plain_math(text).translate(_CHARACTERS))))
    found: list[Equation] = []
    for run in _runs(tokens):
        found += _check_run(run)
    return found


# --------------------------------------------------------------------------- tokens


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    attached = False
    for match in _TOKEN.finditer(text):
        kind = match.lastgroup or "other"
        if kind == "pct":  # lastgroup is the last group that matched; a percent belongs to its number
            kind = "num"
        if kind in ("space", "currency"):  # a currency symbol is a unit written before the number
            attached = False
            continue
        if kind == "num":
            tokens.append(_number(match.group("num"), bool(match.group("pct")), attached))
        elif kind == "opaque":
            tokens.append(_Token("var", OPAQUE, attached))
        elif kind == "ordinal":
            tokens.append(_Token("word", match.group(), attached))
        else:
            text_ = match.group(kind)
            tokens.append(_Token("punct" if kind in ("other", "relation") else kind, text_, attached))
        attached = True
    return tokens


def _number(text: str, percent: bool, attached: bool) -> _Token:
    digits = text.replace(",", "")
    if len(digits) > MAX_DIGITS:
        return _Token("punct", text, attached)
    whole, _, fraction = digits.partition(".")
    value = Fraction(int(whole or "0") * 10 ** len(fraction) + int(fraction or "0"), 10 ** len(fraction))
    return _Token("num", text + "%" if percent else text, attached, value, len(fraction), percent)


def _drop_labels(tokens: list[_Token]) -> list[_Token]:
    """A parenthesis of words only, right after a number or unit, is a label: it becomes unit words."""
    out: list[_Token] = []
    index = 0
    while index < len(tokens):
        end = _label_end(tokens, index)
        if end is not None and out and out[-1].kind in ("num", "word"):
            out += [_Token("label", token.text) for token in tokens[index + 1 : end]]
            index = end + 1
            continue
        out.append(tokens[index])
        index += 1
    return out


def _label_end(tokens: list[_Token], start: int) -> int | None:
    if tokens[start].kind != "lp":
        return None
    end = start + 1
    while end < len(tokens) and tokens[end].kind == "word":
        end += 1
    return end if end > start + 1 and end < len(tokens) and tokens[end].kind == "rp" else None


def _classify(tokens: list[_Token]) -> list[_Token]:
    """Resolve words: operators, units, variables (operands) or plain words (breaks)."""
    out: list[_Token] = []
    units = 0  # unit words since the last number
    for index, token in enumerate(tokens):
        if token.kind == "label":
            out.append(_Token("unit", token.text.lower(), label=True))
            continue
        if token.kind != "word":
            out.append(_per_unit(token, tokens, index, out) or token)
            units = 0
            continue
        word = token.text.lower()
        before = out[-1] if out else None
        after = tokens[index + 1] if index + 1 < len(tokens) else None
        if _is_remainder(token, out, after):
            while out[-1].kind != "num":  # "17 with a remainder of 9"
                out.pop()
            out.append(_Token("rem", "r"))
            continue
        if word == "of" and before is not None and before.kind == "rem":
            continue
        kind, text = _word_kind(word, token, before, after, units)
        if kind == "op" and word == "by" and before is not None and before.kind == "op":
            continue
        units = units + 1 if kind == "unit" and word not in PER_WORDS else 0
        out.append(_Token(kind, text, token.attached))
    return out


def _is_remainder(token: _Token, out: list[_Token], after: _Token | None) -> bool:
    """ "remainder", "rem" or "R" after a quotient ("17 remainder 9", "17 with a remainder of 9")."""
    if token.text.lower() not in REMAINDER_WORDS or after is None:
        return False
    if not (after.kind == "num" or (after.kind == "word" and after.text.lower() == "of")):
        return False
    back = len(out) - 1
    while back >= 0 and back >= len(out) - 2 and out[back].text.lower() in ("with", "a"):
        back -= 1
    return back >= 0 and out[back].kind == "num"


def _per_unit(token: _Token, tokens: list[_Token], index: int, out: list[_Token]) -> _Token | None:
    """``/`` between a quantity and a unit word (``12/month``, ``km/h``) belongs to the unit."""
    if token.kind != "op" or token.text != "/" or not out or out[-1].kind not in ("num", "unit"):
        return None
    after = tokens[index + 1] if index + 1 < len(tokens) else None
    if after is None or after.kind != "word" or not (token.attached or after.attached):
        return None  # 12 / cost: an operand
    if len(after.text) == 1 and out[-1].kind != "unit":
        return None  # 12/n: a variable
    return _Token("unit", "/")


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
    if (
        word == "x"
        and prev_kind in ("num", "rp", "unit")
        and next_kind in ("num", "lp")
        and not token.attached
    ):
        return "op", "*"
    if word == "of" and before is not None and (before.kind == "percent" or before.percent):
        return "op", "*"
    if word == "percent" and before is not None and before.kind == "num" and not before.percent:
        return "percent", word
    if prev_kind == "num" and (word in MULTIPLIERS or (token.attached and len(word) == 1)):
        return "var", word  # 2 million, 2m, 5J: not a plain quantity
    if prev_kind == "unit" and before is not None and before.text == "/":
        return "unit", word
    if word in PER_WORDS and prev_kind in ("num", "unit") and next_kind == "word":
        return "unit", word
    if prev_kind == "unit" and before is not None and before.text in PER_WORDS:
        return "unit", word
    letter_unit = token.text in SINGLE_LETTER_UNITS and prev_kind == "num"
    if len(word) == 1 and _beside_operator(prev_kind, next_kind) and not letter_unit:
        return "var", word
    after_number = prev_kind in ("num", "unit", "percent") and units < MAX_UNIT_WORDS
    if after_number and word not in CONNECTIVES and (len(word) > 1 or letter_unit):
        return "unit", word
    if word not in CONNECTIVES and (prev_kind in ("op", "lp", "func") or next_kind in ("op", "lp")):
        return "var", word  # a word as an operand: algebra, not arithmetic
    return "word", word


def _beside_operator(prev_kind: str, next_kind: str) -> bool:
    return prev_kind in ("op", "eq", "approx", "lp", "func") or next_kind in (
        "op",
        "eq",
        "approx",
        "rp",
        "lp",
    )


# --------------------------------------------------------------------------- runs


def _runs(tokens: list[_Token]) -> Iterator[_Run]:
    """Runs of arithmetic tokens between breaks, dropping runs joined to others by a connective, glued
    to a number outside them (``3:4``, ``x_1``, a decimal comma ``2,5``) or starting with a binary
    operator: such a run holds only part of a side."""
    current: list[_Token] = []
    joined = False  # this run follows "NUMBER connective" or a glue mark, with nothing else between
    word: str | None = None  # the word right before this run
    for index, token in enumerate(tokens):
        if token.kind in ("word", "punct"):
            following = tokens[index + 1] if index + 1 < len(tokens) else None
            glued_after = _glues(token, following)
            if current and not joined and not glued_after and not _fragment(current):
                yield _Run(current, word)
            joined = glued_after or _joins(token, current, following)
            word = token.text if token.kind == "word" else None
            current = []
            continue
        if token.kind == "op" and token.text in BULLETS and _starts_line(tokens, index, current):
            continue  # a list bullet ("- 2 + 3 = 5"), not a sign
        if token.kind == "percent" and current and current[-1].kind == "num":
            current[-1] = replace(current[-1], text=current[-1].text + "%", percent=True)
            continue
        current.append(token)
    if current and not joined and not _fragment(current):
        yield _Run(current, word)


def _joins(word: _Token, current: list[_Token], following: _Token | None) -> bool:
    """ "3 and 4": a connective between a number and the next operand."""
    return (
        word.kind == "word"
        and word.text in JOINING_WORDS
        and bool(current)
        and current[-1].kind in ("num", "rp", "unit")
        and following is not None
        and following.kind in ("num", "lp", "op")
    )


def _glues(mark: _Token, following: _Token | None) -> bool:
    """A ratio colon, a subscript, a prime or a decimal comma written with no space before the next
    number."""
    return (
        mark.kind == "punct"
        and mark.text in GLUE_MARKS
        and following is not None
        and following.attached
        and following.kind in ("num", "lp")
    )


def _fragment(run: list[_Token]) -> bool:
    """A run that starts with a binary operator (not a sign) holds part of a side."""
    first = next((token for token in run if token.kind != "unit"), None)
    if first is None:
        return True
    if first.kind != "op":
        return False
    following = run[run.index(first) + 1] if run.index(first) + 1 < len(run) else None
    signed = first.text in ("-", "+") and following is not None and following.attached
    return not signed


def _starts_line(tokens: list[_Token], index: int, current: list[_Token]) -> bool:
    following = tokens[index + 1] if index + 1 < len(tokens) else None
    line_start = index == 0 or (tokens[index - 1].kind == "punct" and tokens[index - 1].text == "\n")
    return not current and line_start and following is not None and not following.attached


# --------------------------------------------------------------------------- checking


def _check_run(run: _Run) -> list[Equation]:
    sides: list[list[_Token]] = [[]]
    relations: list[str] = []
    for token in run.tokens:
        if token.kind in ("eq", "approx"):
            sides.append([])
            relations.append("=" if token.kind == "eq" else "≈")
        else:
            sides[-1].append(token)
    checked: list[Equation] = []
    for index, relation in enumerate(relations):
        left, right = sides[index], sides[index + 1]
        if index == 0 and _continues_words(run.after_word, left):
            continue
        if _is_definition(left, right) or _is_whole_quotient(left, right) or _ambiguous(left, right):
            continue
        holds = _verdict(left, right, relation)
        if holds is not None:
            checked.append(Equation(_text(left), _text(right), relation, holds))
    return checked


def _continues_words(word: str | None, left: list[_Token]) -> bool:
    """A run right after a word may finish a phrase: "Week 1 = 5 + 3", "twice 3 + 2 = 10", "20% more
    than 50 = 60". Its first equation is skipped when its left side is one number or the word is an
    operation."""
    return word is not None and (_is_lone(left) or word in VERBAL_OPERATIONS)


def _ambiguous(left: list[_Token], right: list[_Token]) -> bool:
    """A side that adds unlike units, adds a percent to a number, or ends in a spaced number in
    parentheses (an equation's label: ``3 + 4 = 7 (2)``)."""
    return any(_mixed_units(side) or _percent_added(side) or _labelled_end(side) for side in (left, right))


def _verdict(left: list[_Token], right: list[_Token], relation: str) -> bool | None:
    """Whether the equation holds; None when it cannot be checked."""
    if _has_remainder(left):
        return None
    if _has_remainder(right):
        return _division_with_remainder(left, right)
    holds = _holds_in_a_reading(left, right, relation)
    if holds is False and _running_total(left, right):
        return None
    return holds


def _running_total(left: list[_Token], right: list[_Token]) -> bool:
    """``3 * 4 = 12 + 5 = 17``: the right side restarts from the left side's value and goes on."""
    arithmetic = [token for token in right if token.kind in ARITHMETIC]
    if len(arithmetic) < 3 or arithmetic[0].kind != "num" or arithmetic[1].kind != "op":
        return False
    return _evaluate(left, Fraction(1, 100)) == _evaluate(arithmetic[:1], Fraction(1, 100))


def _mixed_units(side: list[_Token]) -> bool:
    """``2 feet + 6 inches``: terms of a sum that carry different units."""
    if not any(token.kind == "op" and token.text in "+-" for token in side):
        return False
    term_units: list[frozenset[str]] = []
    for index, token in enumerate(side):
        if token.kind == "num":
            following = []
            for later in side[index + 1 :]:
                if later.kind != "unit":
                    break
                if not later.label:  # "40 (Alani) + 80 (Braylen)": names, not units
                    following.append(later)
            term_units.append(frozenset(_units(following)))
    named = {units for units in term_units if units}
    return len(named) > 1


def _percent_added(side: list[_Token]) -> bool:
    """``$50 + 20%``: a percent added to or taken from a plain number (an increase, or a slip)."""
    arithmetic = [token for token in side if token.kind in ARITHMETIC]
    if not any(token.kind == "num" and not token.percent for token in arithmetic):
        return False
    for index, token in enumerate(arithmetic):
        if token.kind == "num" and token.percent:
            neighbours = arithmetic[max(0, index - 1) : index] + arithmetic[index + 1 : index + 2]
            if any(item.kind == "op" and item.text in "+-" for item in neighbours):
                return True
    return False


def _labelled_end(side: list[_Token]) -> bool:
    arithmetic = [token for token in side if token.kind in ARITHMETIC]
    kinds = [token.kind for token in arithmetic[-4:]]
    return kinds == ["num", "lp", "num", "rp"] and not arithmetic[-3].attached


def _units(side: list[_Token]) -> set[str]:
    return {_singular(token.text) for token in side if token.kind == "unit" and token.text.isalpha()}


def _singular(word: str) -> str:
    if word in ("feet", "foot"):
        return "foot"
    return word[:-1] if word.endswith("s") and len(word) > 3 else word


def _is_lone(side: list[_Token]) -> bool:
    """One number, maybe signed."""
    arithmetic = [token for token in side if token.kind in ARITHMETIC]
    return [token.kind for token in arithmetic][-1:] == ["num"] and (
        len(arithmetic) == 1 or (len(arithmetic) == 2 and arithmetic[0].text == "-")
    )


def _is_definition(left: list[_Token], right: list[_Token]) -> bool:
    """``5 pairs = 5 * 2``, ``1 foot = 12 inches``: a quantity with a unit named, not computed."""
    units = _units(left)
    return bool(units) and _is_lone(left) and not units & _units(right)


def _has_remainder(side: list[_Token]) -> bool:
    return any(token.kind == "rem" for token in side)


def _division_with_remainder(left: list[_Token], right: list[_Token]) -> bool | None:
    """``a / b = q remainder r`` holds when a = b q + r with 0 <= r < |b|, all integers."""
    division = _top_division(left)
    marks = [index for index, token in enumerate(right) if token.kind == "rem"]
    if division is None or len(marks) != 1:
        return None
    quotient, remainder = _evaluate(right[: marks[0]], ONE), _evaluate(right[marks[0] + 1 :], ONE)
    dividend, divisor = division
    if quotient is None or remainder is None or divisor == 0:
        return None
    if any(value.denominator != 1 for value in (dividend, divisor, quotient, remainder)):
        return None
    return dividend == divisor * quotient + remainder and 0 <= remainder < abs(divisor)


def _is_whole_quotient(left: list[_Token], right: list[_Token]) -> bool:
    """``50 / 3 = 16`` (or 17): a quotient rounded to a whole number, as in "16 full bags"."""
    division = _top_division(left)
    written_whole = _is_lone(right) and not [t for t in right if t.kind == "num"][-1].places
    result = _evaluate(right, ONE) if written_whole else None
    if division is None or result is None or result.denominator != 1 or division[1] == 0:
        return False
    quotient = division[0] / division[1]
    whole = all(value.denominator == 1 for value in division)
    return whole and quotient.denominator != 1 and result in (math.floor(quotient), math.ceil(quotient))


def _top_division(side: list[_Token]) -> tuple[Fraction, Fraction] | None:
    """The two operands of a side that is one division ``a / b``, ``a ÷ b`` or a fraction."""
    arithmetic = [token for token in side if token.kind in ARITHMETIC]
    tree = _parse(arithmetic, ONE)
    if tree is None or not isinstance(tree[0], ast.BinOp) or not isinstance(tree[0].op, ast.Div):
        return None
    try:
        return _value(tree[0].left, tree[1]), _value(tree[0].right, tree[1])
    except (_Unverifiable, ZeroDivisionError, RecursionError, MemoryError):
        return None


def _holds_in_a_reading(left: list[_Token], right: list[_Token], relation: str) -> bool | None:
    """Whether the equation holds, percents read as hundredths or as labels; None when unverifiable."""
    readings = (Fraction(1, 100), Fraction(1)) if _has_percent(left + right) else (Fraction(1, 100),)
    verdicts = []
    for scale in readings:
        left_value, right_value = _evaluate(left, scale), _evaluate(right, scale)
        if left_value is None or right_value is None:
            return None
        verdicts.append(_holds(left_value, right_value, left, right, relation, scale))
    return any(verdicts)


def _has_percent(side: list[_Token]) -> bool:
    return any(token.percent for token in side)


def _holds(
    left: Fraction,
    right: Fraction,
    left_side: list[_Token],
    right_side: list[_Token],
    relation: str,
    scale: Fraction,
) -> bool:
    if left == right:
        return True
    approx = relation == "≈"
    slack = max(_rounding_slack(left_side, scale, approx), _rounding_slack(right_side, scale, approx))
    if approx:
        slack = max(slack, APPROX_RELATIVE_TOLERANCE * max(abs(left), abs(right)))
    return abs(left - right) <= slack


def _rounding_slack(side: list[_Token], scale: Fraction, approx: bool) -> Fraction:
    """Half a unit of the last written place, for a side that is one decimal literal (maybe signed);
    after ``≈`` an integer is rounded too, to its last non-zero digit (``≈ 3``, ``≈ 1200``)."""
    arithmetic = [token for token in side if token.kind in ARITHMETIC]
    if not _is_lone(side):
        return Fraction(0)
    literal = arithmetic[-1]
    if literal.places or literal.percent:  # a whole percent is rounded too: 2/3 = 67%
        slack = Fraction(1, 2 * 10**literal.places)
    elif approx:
        digits = literal.text.rstrip("%").replace(",", "")
        slack = Fraction(10 ** (len(digits) - len(digits.rstrip("0")) if digits.strip("0") else 0), 2)
    else:
        return Fraction(0)
    return slack * scale if literal.percent else slack


def _text(side: list[_Token]) -> str:
    return " ".join(token.text for token in side if token.kind != "unit")


# --------------------------------------------------------------------------- evaluation


def _evaluate(side: list[_Token], percent_scale: Fraction) -> Fraction | None:
    """The exact value of one side, or None when it is not a bounded arithmetic expression."""
    parsed = _parse([token for token in side if token.kind != "unit"], percent_scale)
    if parsed is None:
        return None
    try:
        return _value(*parsed)
    except (ValueError, _Unverifiable, ZeroDivisionError, RecursionError, MemoryError):
        return None


def _parse(arithmetic: list[_Token], percent_scale: Fraction) -> tuple[ast.expr, list[Fraction]] | None:
    """The expression tree of a side, its numbers apart; None when it does not parse or is too long."""
    if not arithmetic or len(arithmetic) > MAX_SIDE_TOKENS:
        return None
    numbers: list[Fraction] = []
    pieces: list[str] = []
    previous = ""
    for token in arithmetic:
        if token.kind not in ARITHMETIC:
            return None
        if token.kind in ("lp", "func") and previous in ("num", "rp"):
            pieces.append("*")  # 2(3 + 4), 2√(9)
        if token.kind == "num" and previous == "rp":
            pieces.append("*")  # (3 + 4)2
        if token.kind == "num":
            name = f"_n[{len(numbers)}]"
            pieces.append(f"({name})" if previous == "func" else name)  # √16
            value = token.value or Fraction(0)
            numbers.append(value * percent_scale if token.percent else value)
        elif token.kind == "op":
            pieces.append("**" if token.text in ("^", "**") else token.text)
        elif token.kind == "func":
            pieces.append(FUNCTIONS[token.text])
        else:
            pieces.append(")" if token.kind == "rp" else token.text)
        previous = token.kind
    try:
        return ast.parse(" ".join(pieces), mode="eval").body, numbers
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None


def _value(node: ast.AST, numbers: list[Fraction]) -> Fraction:
    if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant):
        index = node.slice.value
        if isinstance(index, int):  # _parse writes the i-th number as _n[i]
            return numbers[index]
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        operand = _value(node.operand, numbers)
        return -operand if isinstance(node.op, ast.USub) else operand
    if isinstance(node, ast.BinOp):
        left, right = _value(node.left, numbers), _value(node.right, numbers)
        return _bounded(_apply(node.op, left, right))
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and len(node.args) == 1:
        argument = _value(node.args[0], numbers)
        if node.func.id == "_sqrt":
            return _square_root(argument)
        return Fraction(math.floor(argument) if node.func.id == "_floor" else math.ceil(argument))
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


def _square_root(value: Fraction) -> Fraction:
    """The exact root of a rational square; any other root is unverifiable here."""
    if value < 0:
        raise _Unverifiable("root of a negative number")
    numerator, denominator = math.isqrt(value.numerator), math.isqrt(value.denominator)
    if numerator * numerator != value.numerator or denominator * denominator != value.denominator:
        raise _Unverifiable("irrational root")
    return Fraction(numerator, denominator)


def _bounded(value: Fraction) -> Fraction:
    if max(value.numerator.bit_length(), value.denominator.bit_length()) > MAX_BITS:
        raise _Unverifiable("number too large")
    return value
