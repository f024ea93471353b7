"""Outcome: 1.0 when the final answer matches one of the task's acceptable answers, else 0.0.

The task's ``answer_match`` picks the comparison:

- ``exact``: equal after normalisation: Unicode NFKC, casefold, punctuation replaced by spaces, the
  English articles (a, an, the) dropped, whitespace collapsed. An acceptable answer that normalises
  to nothing (say ``"?"``) is compared with only NFKC, casefold and whitespace applied.
- ``contains``: a normalised acceptable answer occurs in the normalised answer as whole words.
- ``number``: the acceptable answer is one number; the answer matches when the *last* number in it
  is equal, compared exactly as fractions. Numbers may carry a sign, thousands commas (``1,000``), a
  decimal part, an exponent up to three digits (``1e6``), be an integer fraction (``3/4``), or end
  in a percent sign, which divides by 100: ``50%`` matches ``50%``, ``0.5`` and ``1/2``, not ``50``
  (list both where either should count). LaTeX (``\\frac{3}{4}``) is not read. A number with more
  than :data:`MAX_NUMBER_DIGITS` digits is not compared.
- ``math``: the same mathematical value, by math-verify (of the last ``\\boxed{}``, else the whole
  answer, else the expression found in its text): plain numbers exactly as under ``number``,
  fractions, percentages and LaTeX (``\\frac{1}{2}``, ``\\sqrt{2}``, ``x = 3``); ``0.5``, ``1/2``,
  ``50%`` and ``\\frac{1}{2}`` all agree. An acceptable answer that is not mathematical is compared
  as under ``exact``. See :mod:`rewards._math` for the candidate it reads and how its work is bounded.

A task with no expected answer cannot be scored (value None); an episode with no final answer scores
0.0. An acceptable answer that is not a number under ``number`` is the task's fault:
:func:`answers_match` raises :class:`AnswerSpecError`, and the reward says it cannot score.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Sequence
from fractions import Fraction

from sandbox.records import AnswerMatch, Reward, Task, Trace

NAME = "outcome"
VERSION = "1"

CORRECT = 1.0
WRONG = 0.0

ARTICLES = frozenset({"a", "an", "the"})
MAX_NUMBER_DIGITS = 1000
PERCENT = Fraction(1, 100)
SHOWN_CHARS = 60  # how much of an acceptable answer an error message quotes
# Minus signs that NFKC leaves alone.
MINUS_SIGNS = str.maketrans({"\u2212": "-", "\u2012": "-", "\u2013": "-", "\ufe63": "-"})

_NUMBER = re.compile(
    r"""
    (?<![\w.])                                    # not inside a word, nor after a decimal point
    (?P<sign>[-+])?
    (?:
        (?P<numerator>[0-9]+)\s*/\s*(?P<denominator>[0-9]+)            # 3/4
      | (?P<decimal>(?:[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)(?:\.[0-9]+)?   # 1,000.5
                    (?:[eE][-+]?[0-9]{1,3}(?![0-9]))?                  # 1e6
        | \.[0-9]+)                                                    # .5
    )
    (?P<percent>\s?%)?
    """,
    re.VERBOSE,
)


class AnswerSpecError(ValueError):
    """An acceptable answer that cannot be used as given (a task to fix, not a model's mistake)."""


def outcome_reward(trace: Trace, task: Task) -> Reward:
    """1.0 when ``trace.final_answer`` matches an acceptable answer, 0.0 when not (see module doc)."""
    correct, reason = judge_answer(trace, task)
    if correct is None:
        return Reward(name=NAME, version=VERSION, value=None, reason=reason)
    value = CORRECT if correct else WRONG
    return Reward(
        name=NAME, version=VERSION, value=value, components={"answer_correct": value}, reason=reason
    )


def judge_answer(trace: Trace, task: Task) -> tuple[bool | None, str]:
    """Whether the trace's final answer is right (None: cannot tell), and why."""
    if not task.acceptable_answers:
        return None, "the task has no expected answer"
    if trace.final_answer is None:
        return False, "no final answer"
    try:
        matched = _first_match(trace.final_answer, task.acceptable_answers, task.answer_match)
    except AnswerSpecError as exc:
        return None, f"task {task.id!r}: {exc}"
    if matched is None:
        return False, f"no acceptable answer matched ({task.answer_match})"
    return True, f"matched {matched!r} ({task.answer_match})"


def answers_match(answer: str, acceptable: Sequence[str], mode: AnswerMatch) -> bool:
    """Whether ``answer`` matches any of the ``acceptable`` answers under ``mode`` (see module doc).

    Raises :class:`AnswerSpecError` when ``mode`` is ``number`` and an acceptable answer is not one
    number.
    """
    return _first_match(answer, acceptable, mode) is not None


def _first_match(answer: str, acceptable: Sequence[str], mode: AnswerMatch) -> str | None:
    if mode == "number":
        return _first_number_match(answer, acceptable)
    matches = _TEXT_MATCHERS.get(mode)
    if matches is None:
        raise AnswerSpecError(f"unknown answer_match {mode!r}; use 'exact', 'contains', 'number' or 'math'")
    return next((expected for expected in acceptable if matches(answer, expected)), None)


# --------------------------------------------------------------------------- text


def _normalize(text: str) -> str:
    """NFKC, casefold, punctuation to spaces, articles dropped, whitespace collapsed."""
    text = unicodedata.normalize("NFKC", text).casefold()
    text = "".join(" " if unicodedata.category(char).startswith("P") else char for char in text)
    return " ".join(word for word in text.split() if word not in ARTICLES)


def _light_normalize(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def _comparable(answer: str, expected: str) -> tuple[str, str]:
    """Both texts normalised, or only lightly when the expected one normalises to nothing."""
    if _normalize(expected):
        return _normalize(answer), _normalize(expected)
    return _light_normalize(answer), _light_normalize(expected)


def _matches_exactly(answer: str, expected: str) -> bool:
    given, wanted = _comparable(answer, expected)
    return given == wanted


def _occurs_in(answer: str, expected: str) -> bool:
    given, wanted = _comparable(answer, expected)
    return f" {wanted} " in f" {given} "


def _same_math(answer: str, expected: str) -> bool:
    from rewards._math import math_equivalent  # imported here: it imports this module's number reader

    same = math_equivalent(answer, expected)
    return _matches_exactly(answer, expected) if same is None else same


_TEXT_MATCHERS: dict[str, Callable[[str, str], bool]] = {
    "exact": _matches_exactly,
    "contains": _occurs_in,
    "math": _same_math,
}


# --------------------------------------------------------------------------- numbers


def _first_number_match(answer: str, acceptable: Sequence[str]) -> str | None:
    wanted = [(expected, _expected_number(expected)) for expected in acceptable]
    given = _last_number(answer)
    if given is None:
        return None
    return next((expected for expected, value in wanted if value == given), None)


def _expected_number(expected: str) -> Fraction:
    text = _prepare_numbers(expected).strip()
    match = _NUMBER.fullmatch(text)
    value = _to_fraction(match) if match else None
    if value is None:
        raise AnswerSpecError(
            f"acceptable answer {_shown(expected)} is not a number (of at most {MAX_NUMBER_DIGITS} digits), "
            f"as answer_match='number' needs"
        )
    return value


def _shown(text: str) -> str:
    """``text`` for a message: quoted, and cut short when long."""
    return repr(text) if len(text) <= SHOWN_CHARS else repr(text[:SHOWN_CHARS]) + "..."


def _last_number(text: str) -> Fraction | None:
    """The last number written in ``text``, exactly; None when there is none or it is too long."""
    found = list(_NUMBER.finditer(_prepare_numbers(text)))
    return _to_fraction(found[-1]) if found else None


def _prepare_numbers(text: str) -> str:
    return unicodedata.normalize("NFKC", text).translate(MINUS_SIGNS)


def _to_fraction(match: re.Match[str]) -> Fraction | None:
    if sum(char.isdigit() for char in match.group()) > MAX_NUMBER_DIGITS:
        return None
    if match["numerator"] is not None:
        if int(match["denominator"]) == 0:
            return None
        value = Fraction(int(match["numerator"]), int(match["denominator"]))
    else:
        value = Fraction(match["decimal"].replace(",", ""))
    if match["sign"] == "-":
        value = -value
    return value * PERCENT if match["percent"] else value
