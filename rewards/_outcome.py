"""Outcome: 1.0 when the final answer gives the task's answer and nothing that hedges it, else 0.0.

The task's ``answer_match`` picks the comparison, on the tokens of :mod:`rewards._words` (NFKC,
casefold, words and symbols, punctuation only separating, articles dropped):

- ``exact``: the answer's tokens equal an acceptable answer's. An acceptable answer with no token
  (say ``"?"``) is compared with only NFKC, casefold and whitespace applied.
- ``contains``: an acceptable answer's tokens occur in the answer's, as whole tokens: ``Test page``
  is found in ``<title>Test page</title>``, ``world`` in ``+world``, ``5`` in ``$5``.
- ``number``: the acceptable answer is one number; the answer's value is the *last number in it that
  is not negated* ("40, not 35" states 40), compared exactly as fractions. Numbers may carry a sign,
  thousands commas (``1,000``), a decimal part, an exponent up to three digits (``1e6``), be an
  integer fraction (``3/4``), or end in a percent sign, which divides by 100: ``50%`` matches
  ``50%``, ``0.5`` and ``1/2``, not ``50`` (list both where either should count). LaTeX
  (``\\frac{3}{4}``) is not read. A number with more than :data:`MAX_NUMBER_DIGITS` digits is not
  compared.
- ``math``: the same mathematical value, by math-verify (of the last ``\\boxed{}``, else the whole
  answer, else the expression found in its text): plain numbers exactly as under ``number``,
  fractions, percentages and LaTeX (``\\frac{1}{2}``, ``\\sqrt{2}``, ``x = 3``); ``0.5``, ``1/2``,
  ``50%`` and ``\\frac{1}{2}`` all agree. An acceptable answer that is not mathematical is compared
  as under ``exact``. See :mod:`rewards._math` for the candidate it reads and how its time is bounded.

A task's expected answer is one answer (its list holds ways of writing it), so an answer must not
hedge. Three rules, applied before the match counts:

1. **Distractors.** An answer that names one of the task's ``distractors`` (compared as its
   acceptable answers are, and not negated) is wrong, even when it also names a right answer:
   "Playing Toxic by Britney Spears (not BoyWithUke)" fails where "Britney Spears" is a distractor.
   Under ``number`` every number in the answer counts; under ``math`` the answer's value.
2. **Negation.** Under ``contains`` a right answer counts only where it is not negated (a negation
   word among the two tokens before it in its item: "won't be warm", "Not 1/2"); under ``number``
   a negated number is passed over.
3. **Alternatives.** Under ``contains`` and ``number``, a right answer in a clause that offers
   alternatives ("or") fails when another alternative is a rival candidate: not negated, matching
   no acceptable answer, and short (at most one token longer than the right answer; under
   ``number``, any other number). "Lyon, Marseille or Paris" and "1/2 or 2/3" fail; "a coat or a
   jacket" (both acceptable) and "wear a coat or you will freeze" (not a candidate) pass.

A task with no expected answer cannot be scored (value None); an episode with no final answer scores
0.0. An acceptable answer or distractor that is not a number under ``number``, or a distractor that
is also acceptable, is the task's fault: :func:`answers_match` raises :class:`AnswerSpecError`, and
the reward says it cannot score.

**The world before the words.** A task with ``expected_state`` is judged on the servers' state first:
each check must hold of the state the episode recorded at its end (``Trace.final_state``, read
through MCP resources the model never sees; see :mod:`rewards._state`). A failed check makes the
outcome 0.0, whatever the answer says, with a reason naming the check ("expected state failed:
music music://state now_playing equals "lib-001" (found "cat-001")"). When every check holds, the
answer is judged as above (a task with state checks and no expected answer scores 1.0). A trace
that recorded no state (an old trace, a hub that cannot read state) still fails on a wrong answer,
and otherwise cannot be scored (None): a right answer does not vouch for state nobody saw.

**Answers rest on what the tools said.** A task with ``evidence`` (calls, matched like ideal calls)
counts a right answer only when one of them was made before the answer and returned without error
(:func:`rewards._bfcl.step_produces`): "t-shirt" for a forecast nobody read, or read for another
place, or after a call the server refused, is a guess, and scores 0.0 ("no evidence: ..."), even
when it happens to be right. A task without ``evidence`` is judged on its answer and state alone.

Version 5 (was 4): ``evidence``. Version 4 (was 3): markup (symbols, a tag's name) neither fills the
negation window nor lengthens a rival alternative: "not <b>Paris</b>" and "<b>Paris</b> or
<b>Lyon</b>" fail as their plain forms do. Version 3 (was 2): expected_state. Version 2 (was 1):
tokens split at symbols, and the three rules.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction

from rewards._bfcl import step_produces
from rewards._budget import bounded, check_time, declare
from rewards._math import math_equivalent
from rewards._numbers import MAX_NUMBER_DIGITS, NUMBER, prepare_numbers, to_fraction
from rewards._state import check_state, describe_check
from rewards._words import NEGATIONS, Words, read_words, tokens
from sandbox.records import AnswerMatch, Reward, Task, Trace

NAME = "outcome"
VERSION = "5"

CORRECT = 1.0
WRONG = 0.0

RIVAL_EXTRA_TOKENS = 1  # a rival alternative is at most this many tokens longer than the right answer
SHOWN_CHARS = 60  # how much of an acceptable answer an error message quotes


class AnswerSpecError(ValueError):
    """An acceptable answer that cannot be used as given (a task to fix, not a model's mistake)."""


@dataclass(frozen=True)
class Verdict:
    """Whether an answer is right, and why."""

    correct: bool
    reason: str


@bounded(NAME, VERSION)
def outcome_reward(trace: Trace, task: Task) -> Reward:
    """1.0 when the servers' final state passes the task's checks and ``trace.final_answer`` gives
    the task's answer without hedging, else 0.0 (module doc)."""
    correct, reason = judge_outcome(trace, task)
    if correct is None:
        return Reward(name=NAME, version=VERSION, value=None, reason=reason)
    value = CORRECT if correct else WRONG
    components = {"answer_correct": value}
    if task.expected_state:
        components["state_correct"] = float(not reason.startswith(STATE_FAILED))
    if task.evidence:
        components["grounded"] = float(rests_on_evidence(trace, task))
    return Reward(name=NAME, version=VERSION, value=value, components=components, reason=reason)


STATE_FAILED = "expected state failed"
NO_EVIDENCE = "no evidence"


def rests_on_evidence(trace: Trace, task: Task) -> bool:
    """Whether a step before the final answer produced one of the task's ``evidence`` calls
    (always False for a task without evidence)."""
    for step in trace.steps:
        if step.action == "answer":
            return False
        if any(step_produces(call, step, trace.tools) for call in task.evidence):
            return True
    return False


def judge_state(trace: Trace, task: Task) -> tuple[bool | None, str]:
    """Whether every ``expected_state`` check holds of the trace's final state (None: no state was
    recorded), and why; (True, "") for a task without checks."""
    if not task.expected_state:
        return True, ""
    if not trace.final_state:
        return None, "cannot score: the trace recorded no server state, which expected_state needs"
    for check in task.expected_state:
        verdict = check_state(check, trace.final_state)
        if not verdict.holds:
            return False, f"{STATE_FAILED}: {check.server} {describe_check(check)} ({verdict.reason})"
    return True, f"expected state holds ({len(task.expected_state)} check(s))"


def judge_outcome(trace: Trace, task: Task) -> tuple[bool | None, str]:
    """The outcome: the expected state first, then the answer (module doc); None: cannot tell."""
    state_ok, state_reason = judge_state(trace, task)
    if state_ok is False:
        return False, state_reason
    if task.expected_state and not task.acceptable_answers:
        if state_ok and not (trace.final_answer or "").strip():  # the work is done but never reported
            return False, f"{state_reason}; but the episode ended without an answer"
        return state_ok, state_reason
    correct, reason = judge_answer(trace, task)
    if correct and task.evidence and not rests_on_evidence(trace, task):
        names = ", ".join(dict.fromkeys(call.name for call in task.evidence))
        return False, f"{NO_EVIDENCE}: {reason}, but no call of {names} it could rest on succeeded"
    if state_ok is None and correct is not False:  # a right answer cannot vouch for unseen state
        return None, state_reason
    return correct, f"{state_reason}; {reason}" if state_reason else reason


def judge_answer(trace: Trace, task: Task) -> tuple[bool | None, str]:
    """Whether the trace's final answer is right (None: cannot tell), and why."""
    if not task.acceptable_answers:
        return None, "the task has no expected answer"
    if trace.final_answer is None:
        return False, "no final answer"
    try:
        verdict = judge(trace.final_answer, task.acceptable_answers, task.answer_match, task.distractors)
    except AnswerSpecError as exc:
        return None, f"task {task.id!r}: {exc}"
    return verdict.correct, verdict.reason


def answers_match(
    answer: str, acceptable: Sequence[str], mode: AnswerMatch, distractors: Sequence[str] = ()
) -> bool:
    """Whether ``answer`` gives one of the ``acceptable`` answers under ``mode`` and the hedging rules,
    naming none of the ``distractors`` (see module doc).

    Raises :class:`AnswerSpecError` when an acceptable answer or distractor cannot be used (not one
    number under ``number``; a distractor that is also acceptable).
    """
    return judge(answer, acceptable, mode, distractors).correct


def judge(answer: str, acceptable: Sequence[str], mode: AnswerMatch, distractors: Sequence[str]) -> Verdict:
    """The verdict on ``answer`` (see module doc)."""
    check_time("matching the answer")
    if mode == "number":
        return _judge_numbers(answer, acceptable, distractors)
    if mode == "contains":
        return _judge_contains(answer, _Expected.of(acceptable, distractors))
    if mode == "exact":
        return _judge_exact(answer, _Expected.of(acceptable, distractors))
    if mode == "math":
        return _judge_math(answer, acceptable, distractors)
    raise AnswerSpecError(f"unknown answer_match {mode!r}; use 'exact', 'contains', 'number' or 'math'")


# --------------------------------------------------------------------------- text


@dataclass(frozen=True)
class _Text:
    """An acceptable answer or distractor as written, and its tokens (empty: only punctuation)."""

    text: str
    key: tuple[str, ...]

    @property
    def comparable(self) -> str:
        """What two texts that match each other share: the tokens, or the light form without any."""
        return " ".join(self.key) if self.key else _light(self.text)


@dataclass(frozen=True)
class _Expected:
    right: tuple[_Text, ...]
    wrong: tuple[_Text, ...]

    @classmethod
    def of(cls, acceptable: Sequence[str], distractors: Sequence[str]) -> _Expected:
        right = tuple(_Text(text, tokens(text)) for text in acceptable)
        wrong = tuple(_Text(text, tokens(text)) for text in distractors)
        right_keys = {item.comparable for item in right}
        clash = next((item for item in wrong if item.comparable in right_keys), None)
        if clash is not None:
            raise AnswerSpecError(f"distractor {_shown(clash.text)} is also an acceptable answer")
        return cls(right, wrong)


def _light(text: str) -> str:
    """NFKC, casefold and whitespace only: the comparison for a text with no token."""
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def _judge_exact(answer: str, expected: _Expected) -> Verdict:
    given = tokens(answer)
    for item in expected.wrong:
        if _equal(answer, given, item):
            return Verdict(False, f"gives the wrong answer {_shown(item.text)}")
    matched = next((item for item in expected.right if _equal(answer, given, item)), None)
    if matched is None:
        return Verdict(False, "no acceptable answer matched (exact)")
    return Verdict(True, f"matched {matched.text!r} (exact)")


def _equal(answer: str, given: tuple[str, ...], item: _Text) -> bool:
    return given == item.key if item.key else _light(answer) == _light(item.text)


def _judge_contains(answer: str, expected: _Expected) -> Verdict:
    words = read_words(answer)
    for item in expected.wrong:
        if _named(answer, words, item):
            return Verdict(False, f"names the wrong answer {_shown(item.text)}")
    found, negated = _occurrences(answer, words, expected.right)
    if not found:
        if negated:
            return Verdict(False, f"negates {_shown(negated[0].text)}")
        return Verdict(False, "no acceptable answer matched (contains)")
    for item, index in found:
        rival = _rival(words, index, item, expected.right)
        if rival is not None:
            offered = _shown(" ".join(rival))
            return Verdict(False, f"offers {offered} as an alternative to {_shown(item.text)}")
    return Verdict(True, f"matched {found[0][0].text!r} (contains)")


def _named(answer: str, words: Words, item: _Text) -> bool:
    """Whether ``item`` occurs in the answer, somewhere not negated."""
    if not item.key:
        return f" {_light(item.text)} " in f" {_light(answer)} "
    return any(not words.negated(index) for index in words.occurrences(item.key))


def _occurrences(
    answer: str, words: Words, right: Sequence[_Text]
) -> tuple[list[tuple[_Text, int]], list[_Text]]:
    """The right answers' occurrences that are not negated (with their token index), and those
    that only occur negated."""
    found: list[tuple[_Text, int]] = []
    negated: list[_Text] = []
    for item in right:
        if not item.key:
            if _named(answer, words, item):
                found.append((item, -1))
            continue
        indices = list(words.occurrences(item.key))
        plain = [index for index in indices if not words.negated(index)]
        found += [(item, index) for index in plain]
        if indices and not plain:
            negated.append(item)
    return found, negated


def _rival(words: Words, index: int, item: _Text, right: Sequence[_Text]) -> tuple[str, ...] | None:
    """Another alternative beside the right answer at ``index`` that is a candidate of its own."""
    if index < 0:
        return None
    for other in words.alternatives(index, len(item.key)):
        short = len(other) <= len(item.key) + RIVAL_EXTRA_TOKENS
        if short and not NEGATIONS & set(other) and not any(_within(other, each.key) for each in right):
            return other
    return None


def _within(tokens_: tuple[str, ...], key: tuple[str, ...]) -> bool:
    size = len(key)
    return bool(key) and any(tokens_[start : start + size] == key for start in range(len(tokens_) - size + 1))


def _judge_math(answer: str, acceptable: Sequence[str], distractors: Sequence[str]) -> Verdict:

    _Expected.of(acceptable, distractors)  # a distractor that is also acceptable is refused
    for wrong in distractors:
        if _same_math(answer, wrong, math_equivalent):
            return Verdict(False, f"gives the wrong answer {_shown(wrong)}")
    matched = next((right for right in acceptable if _same_math(answer, right, math_equivalent)), None)
    if matched is None:
        return Verdict(False, "no acceptable answer matched (math)")
    return Verdict(True, f"matched {matched!r} (math)")


def _same_math(answer: str, expected: str, math_equivalent: Callable[[str, str], bool | None]) -> bool:
    same = math_equivalent(answer, expected)
    if same is None:
        item = _Text(expected, tokens(expected))
        return _equal(answer, tokens(answer), item)
    return same


# --------------------------------------------------------------------------- numbers


def _judge_numbers(answer: str, acceptable: Sequence[str], distractors: Sequence[str]) -> Verdict:
    right = [(text, _expected_number(text)) for text in acceptable]
    wrong = [(text, _expected_number(text, "distractor")) for text in distractors]
    clash = {value for _, value in right} & {value for _, value in wrong}
    if clash:
        raise AnswerSpecError(f"distractor {next(iter(clash))} is also an acceptable answer")
    words = read_words(answer)
    numbers = _numbers(answer, words)
    stated = [(value, index) for value, index in numbers if index is None or not words.negated(index)]
    for text, value in wrong:
        if any(given == value for given, _ in stated):
            return Verdict(False, f"names the wrong answer {_shown(text)}")
    if not stated:
        return Verdict(False, "every number in it is negated" if numbers else "no number in the answer")
    given, index = stated[-1]
    matched = next((text for text, value in right if value == given), None)
    if matched is None:
        return Verdict(False, "no acceptable answer matched (number)")
    rival = _rival_number(words, index, stated, {value for _, value in right})
    if rival is not None:
        return Verdict(False, f"offers {rival} as an alternative to {_shown(matched)}")
    return Verdict(True, f"matched {matched!r} (number)")


def _numbers(answer: str, words: Words) -> list[tuple[Fraction, int | None]]:
    """Every number in the answer, with the index of its first token (None: it has none)."""
    found = []
    for match in NUMBER.finditer(prepare_numbers(answer)):
        value = to_fraction(match)
        if value is not None:
            found.append((value, words.at(match.start())))
    return found


def _rival_number(
    words: Words, index: int | None, stated: Sequence[tuple[Fraction, int | None]], right: set[Fraction]
) -> Fraction | None:
    """A number not acceptable, in another alternative of the clause that holds the answer's number."""
    if index is None or words.clauses[index] not in words.offering:
        return None
    clause, item = words.clauses[index], words.items[index]
    for value, other in stated:
        elsewhere = other is not None and words.clauses[other] == clause and words.items[other] != item
        if elsewhere and value not in right:
            return value
    return None


def _expected_number(expected: str, what: str = "acceptable answer") -> Fraction:
    text = prepare_numbers(expected).strip()
    match = NUMBER.fullmatch(text)
    value = to_fraction(match) if match else None
    if value is None:
        raise AnswerSpecError(
            f"{what} {_shown(expected)} is not a number (of at most {MAX_NUMBER_DIGITS} digits), "
            f"as answer_match='number' needs"
        )
    return value


def _shown(text: str) -> str:
    """``text`` for a message: quoted, and cut short when long."""
    return repr(text) if len(text) <= SHOWN_CHARS else repr(text[:SHOWN_CHARS]) + "..."


# What ``sandbox gauntlet`` checks: the attacks this reward catches, and its maximum.
declare(
    outcome_reward,
    catches=frozenset({"loop", "hedge", "distractor", "empty_answer"}),
    maximum=lambda trace, task: CORRECT,
)
