"""Mathematical answer equivalence for ``answer_match="math"``, with math-verify.

:func:`math_equivalent` reads the expected answer and the model's answer as mathematical values and
compares them:

- A plain number (``0.5``, ``1/2``, ``1,000``, ``1e6``, ``-3``, ``50%``) is read exactly as a
  fraction, as ``answer_match="number"`` reads it; a percent divides by 100, so ``50%`` equals
  ``0.5`` and ``1/2`` and not ``50``. Two plain numbers compare exactly, without math-verify.
- Anything else goes through math-verify (LaTeX such as ``\\frac{3}{4}``, ``\\sqrt{2}``, ``x = 3``,
  sets, intervals), which parses to SymPy and compares symbolically and numerically. Its
  numeric comparison rounds decimals inside a formula to 6 places (``\\frac{0.333333}{1}`` equals
  ``1/3``; the plain number ``0.333333`` does not). A percent
  ``50\\%`` is rewritten to ``50/100`` first: math-verify otherwise lets a percent match the
  bare number as well, which would let ``50%`` hedge between 50 and 0.5.
- The candidate in the model's answer is the content of its last ``\\boxed{}`` when there is one;
  else the whole answer when it is one number or one formula; else the expression math-verify
  extracts from the text (an explicit "the final answer is ...", else the last one).
- An expected answer that is not mathematical (``"Paris"``, ``"12:30"``) returns None: the caller
  compares normalised strings instead.

Time. math-verify bounds its own work with ``signal.alarm``, which only works in the main thread
(rewards are scored in worker threads, where it raises), and Python cannot stop a thread from
outside. So whenever SymPy is needed, the comparison runs in a worker process (a fresh interpreter,
started on first use and kept for the next comparison: it forks no threaded parent and runs no main
module again, as ``multiprocessing``'s start methods would), which is killed when its time is up:
:data:`MATH_SECONDS` from the moment it is sent (waiting for a free worker, or for a new one to load
SymPy, is bounded apart, by :data:`WAIT_SECONDS`), or less when the reward's budget ends sooner. Past
it the comparison raises
:class:`rewards._budget.BudgetExceeded`, and the reward says it cannot score
(``\\tan(\\tan(\\tan(\\tan(\\tan(\\tan(1))))))`` sends SymPy's simplifier off for minutes). Two plain
numbers, and an expected answer that is not mathematical, never leave the process. Inside the worker
math-verify is called with ``parsing_timeout=None`` and ``timeout_seconds=None``, and its work is also
bounded by what reaches SymPy: only the last :data:`MAX_ANSWER_CHARS` of an answer are read, a
formula longer than :data:`MAX_EXPRESSION_CHARS` is not parsed, and a parsed value is not compared
when it holds a power whose exponent is not a small number (``9^{9^{9^9}}``), a factorial-like
function of a large number, or an unevaluated sum, product, integral, limit or derivative. Such an
answer simply does not match. math-verify returns no value, rather than raising, on text it cannot
read.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import json
import logging
import re
import select
import subprocess
import sys
import threading
from collections.abc import Sequence
from fractions import Fraction
from typing import IO, Any

from rewards._budget import BudgetExceeded, time_left
from rewards._numbers import NUMBER, prepare_numbers, to_fraction

MATH_SECONDS = 5.0  # one comparison that needs SymPy
WAIT_SECONDS = 60.0  # for a free worker, and for a new one to load SymPy (about 1-3 s)
MATH_WORKERS = 2  # worker processes (each holds SymPy, about 100 MB)
MAX_ANSWER_CHARS = 2000  # of a longer answer, only the tail is read
MAX_EXPRESSION_CHARS = 300  # a longer formula is not parsed
MAX_EXPONENT = 100  # a power's exponent must be a number of at most this size
MAX_COUNTING_ARGUMENT = 1000  # the largest n of n!, binomial(n, k), gamma(n) that is evaluated

_BOXED = re.compile(r"\\(?:boxed|fbox)\s*\{")
_DELIMITED = re.compile(r"^(?:\$\$(?P<a>.*)\$\$|\$(?P<b>.*)\$|\\\((?P<c>.*)\\\)|\\\[(?P<d>.*)\\\])$", re.S)
_PERCENT = re.compile(r"(?<![\w.])([0-9]+(?:\.[0-9]+)?)\s*\\?%")
_COMMAND = re.compile(r"\\[A-Za-z]+")
_WORD = re.compile(r"[A-Za-z]{2,}")
_LATEX_THOUSANDS = re.compile(r"(?<=[0-9])\{,\}(?=[0-9])")  # 1{,}000

# What math-verify returns: SymPy values, or (never here, as no fallback is asked for) strings.
Parsed = list[Any]
Value = Fraction | Parsed


def math_equivalent(answer: str, expected: str) -> bool | None:
    """Whether ``answer`` states the same mathematical value as ``expected`` (see module doc).

    None when ``expected`` is not a mathematical answer; the caller then compares strings. Raises
    :class:`rewards._budget.BudgetExceeded` when the comparison runs past its time.
    """
    wanted = _read_plain(expected, whole=True)
    if wanted is None:
        return None
    given = _read_plain(answer, whole=False)
    if isinstance(wanted, Fraction) and isinstance(given, Fraction):
        return wanted == given
    return _in_worker(answer, expected)


def compare(answer: str, expected: str) -> bool | None:
    """:func:`math_equivalent` in this process and thread, with no time bound (the worker's task)."""
    wanted = _read(expected, whole=True)
    if wanted is None:
        return None
    given = _read(answer, whole=False)
    if given is None:
        return False
    if isinstance(wanted, Fraction) and isinstance(given, Fraction):
        return wanted == given
    return _verify(_as_sympy(wanted), _as_sympy(given))


# --------------------------------------------------------------------------- the candidate


def _read(text: str, *, whole: bool) -> Value | None:
    """The value ``text`` states; ``whole``: all of it must be mathematical (an expected answer)."""
    text = _tail(text).strip()
    boxed = _last_boxed(text)
    if boxed is not None:
        return _read_formula(boxed)
    formula = _unwrap(text)
    if _looks_mathematical(formula):
        return _read_formula(formula)
    if whole:
        return None
    return _tame(_math_verify().parse_text(_percent_as_fraction(text, grouped=False))) or None


_NEEDS_SYMPY = "sympy"


def _read_plain(text: str, *, whole: bool) -> Fraction | str | None:
    """:func:`_read` as far as it goes without math-verify: a plain number, None where ``_read``
    gives None without it (an expected answer that is not mathematical), else :data:`_NEEDS_SYMPY`."""
    text = _tail(text).strip()
    boxed = _last_boxed(text)
    formula = boxed if boxed is not None else _unwrap(text)
    if boxed is None and not _looks_mathematical(formula):
        return None if whole else _NEEDS_SYMPY
    number = _plain_number(_clean_formula(formula))
    return _NEEDS_SYMPY if number is None else number


def _tail(text: str) -> str:
    """The last :data:`MAX_ANSWER_CHARS` of ``text``, starting after a whitespace so no number is cut."""
    if len(text) <= MAX_ANSWER_CHARS:
        return text
    tail = text[-MAX_ANSWER_CHARS:]
    _, space, rest = tail.partition(" ")
    return rest if space else ""


def _last_boxed(text: str) -> str | None:
    """The content of the last ``\\boxed{...}``, braces balanced; None when there is none."""
    found = list(_BOXED.finditer(text))
    if not found:
        return None
    start = found[-1].end()
    depth = 1
    for index in range(start, len(text)):
        depth += {"{": 1, "}": -1}.get(text[index], 0)
        if depth == 0:
            return text[start:index]
    return text[start:]  # unclosed: the rest of the text


def _unwrap(text: str) -> str:
    """``text`` without one pair of math delimiters around it and a trailing full stop."""
    text = text.strip().removesuffix(".").strip()
    match = _DELIMITED.match(text)
    if match:
        text = next(group for group in match.groups() if group is not None).strip()
    return text


def _looks_mathematical(text: str) -> bool:
    """A number or a formula: something with a digit or a letter, and no word outside LaTeX commands."""
    rest = _COMMAND.sub(" ", text)
    return bool(re.search(r"[0-9A-Za-z]", rest)) and not _WORD.search(rest)


def _clean_formula(formula: str) -> str:
    return _LATEX_THOUSANDS.sub(",", formula.replace("\\%", "%")).strip()


def _read_formula(formula: str) -> Value | None:
    formula = _clean_formula(formula)
    number = _plain_number(formula)
    if number is not None:
        return number
    if len(formula) > MAX_EXPRESSION_CHARS:
        return None
    return _tame(_math_verify().parse_latex(_percent_as_fraction(formula))) or None


def _plain_number(text: str) -> Fraction | None:
    match = NUMBER.fullmatch(prepare_numbers(text).strip())
    return to_fraction(match) if match else None


def _percent_as_fraction(text: str, *, grouped: bool = True) -> str:
    """``50%`` as ``(50/100)``; in free text as ``50/100``, which math-verify's extraction reads
    even before a full stop."""
    return _PERCENT.sub(r"(\1/100)" if grouped else r"\1/100", text)


# --------------------------------------------------------------------------- bounds on SymPy's work


def _tame(values: Parsed) -> Parsed:
    """The values that SymPy can compare in bounded time (see module doc)."""
    return [value for value in values if _is_tame(value)]


def _is_tame(value: Any) -> bool:
    sympy = _math_verify().sympy
    unbounded = (sympy.Sum, sympy.Product, sympy.Integral, sympy.Limit, sympy.Derivative)
    counting = (
        sympy.factorial,
        sympy.factorial2,
        sympy.subfactorial,
        sympy.binomial,
        sympy.gamma,
        sympy.RisingFactorial,
        sympy.FallingFactorial,
    )
    for node in sympy.preorder_traversal(value):
        if isinstance(node, unbounded):
            return False
        if isinstance(node, sympy.Pow) and not _small_number_only(node.exp, sympy, MAX_EXPONENT):
            return False
        if isinstance(node, counting) and not all(
            _small_number_only(arg, sympy, MAX_COUNTING_ARGUMENT) for arg in node.args
        ):
            return False
    return True


def _small_number_only(node: Any, sympy: Any, most: int) -> bool:
    """Whether ``node`` holds no power or counting function and no number above ``most``."""
    if not isinstance(node, sympy.Basic):
        return False
    if node.has(sympy.Pow, sympy.factorial, sympy.gamma, sympy.binomial):
        return False
    return all(abs(atom) <= most for atom in node.atoms(sympy.Number))


def _as_sympy(value: Value) -> Parsed:
    if isinstance(value, Fraction):
        return [_math_verify().sympy.Rational(value.numerator, value.denominator)]
    return value


def _verify(wanted: Parsed, given: Parsed) -> bool:
    return bool(_math_verify().verify(wanted, given, timeout_seconds=None))


# --------------------------------------------------------------------------- math-verify, loaded once


class _NoTimeoutNotice(logging.Filter):
    """Drops math-verify's notice that its timeout is off: the bounds above replace it."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Timeout is disabled")


class _MathVerify:
    """math-verify and SymPy, imported on first use (about a second: SymPy is large)."""

    def __init__(self) -> None:
        import math_verify
        import sympy

        for name in ("math_verify.parser", "math_verify.grader"):
            logging.getLogger(name).addFilter(_NoTimeoutNotice())
        self.sympy = sympy
        self._module = math_verify
        self._latex: Sequence[Any] = [math_verify.LatexExtractionConfig()]
        self._text: Sequence[Any] = [math_verify.LatexExtractionConfig(), math_verify.ExprExtractionConfig()]

    def parse_latex(self, formula: str) -> Parsed:
        return self._parse(f"${formula}$", self._latex)

    def parse_text(self, text: str) -> Parsed:
        return self._parse(text, self._text)

    def _parse(self, text: str, config: Sequence[Any]) -> Parsed:
        # parsing_timeout=None: no signal.alarm, so it works off the main thread too.
        return list(
            self._module.parse(
                text, extraction_config=config, fallback_mode="no_fallback", parsing_timeout=None
            )
        )

    def verify(self, wanted: Parsed, given: Parsed, timeout_seconds: None) -> bool:
        # The expected answer goes first: math-verify's comparison is not symmetric.
        return bool(self._module.verify(wanted, given, timeout_seconds=timeout_seconds))


@functools.cache
def _math_verify() -> _MathVerify:
    return _MathVerify()


# --------------------------------------------------------------------------- the worker processes


def serve() -> None:
    """A worker's loop: ``{"ready": true}`` once math-verify is loaded, then one JSON request a line
    on stdin, ``[answer, expected]``, and one reply a line on stdout, ``{"same": true | false | null}``
    or ``{"error": "..."}``; ends when stdin closes."""
    logging.disable(logging.WARNING)  # nothing on stderr, which the parent does not read
    _math_verify()
    _reply({"ready": True})
    for line in sys.stdin:
        answer, expected = json.loads(line)
        try:
            _reply({"same": compare(answer, expected)})
        except Exception as exc:  # a bug to report to the parent, which raises it there
            _reply({"error": repr(exc)})


def _reply(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


_WORKER_CODE = (
    "import json, sys; sys.path[:0] = json.loads(sys.argv[1]); from rewards._math import serve; serve()"
)


class _Worker:
    """One worker process running :func:`serve`, started with this interpreter and import path (a
    fresh process, so no thread of the parent is forked and no main module is run again)."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", _WORKER_CODE, json.dumps(sys.path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            encoding="utf-8",
        )
        seconds = time_left(WAIT_SECONDS, "starting math-verify's worker")
        try:
            self._read(seconds)
        except TimeoutError:
            raise BudgetExceeded(f"math-verify's worker did not start within {seconds:.3g} s") from None

    def ask(self, answer: str, expected: str) -> bool | None:
        """The worker's verdict, within :data:`MATH_SECONDS` or the budget's remaining time; past it
        the worker is killed and :class:`BudgetExceeded` raised."""
        seconds = time_left(MATH_SECONDS, "comparing math answers")
        self._pipes()[0].write(json.dumps([answer, expected]) + "\n")
        self._pipes()[0].flush()
        try:
            reply = self._read(seconds)
        except TimeoutError:
            raise BudgetExceeded(f"math-verify ran past {seconds:.3g} s comparing the answer") from None
        if "error" in reply:
            raise RuntimeError(f"math-verify failed in its worker: {reply['error']}")
        return reply["same"]

    def _pipes(self) -> tuple[IO[str], IO[str]]:
        stdin, stdout = self.process.stdin, self.process.stdout
        if stdin is None or stdout is None:  # never: both are pipes
            raise RuntimeError("math-verify's worker has no pipes")
        return stdin, stdout

    def _read(self, seconds: float) -> dict[str, Any]:
        """The worker's next message; :class:`TimeoutError` (the worker killed) past ``seconds``."""
        stdout = self._pipes()[1]
        ready, _, _ = select.select([stdout], [], [], max(0.0, seconds))
        if not ready:
            self.kill()
            raise TimeoutError
        line = stdout.readline()
        if not line:
            code = self.process.wait()
            raise BudgetExceeded(f"math-verify's worker process ended (exit status {code})")
        return json.loads(line)

    def kill(self) -> None:
        self.process.kill()
        self.process.wait()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._pipes()[0].close()
        try:
            self.process.wait(timeout=1.0)
        except subprocess.TimeoutExpired:
            self.kill()


class _Workers:
    """At most :data:`MATH_WORKERS` workers, each lent to one thread at a time; closed at exit. A
    worker that timed out or died is not lent again."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._idle: list[_Worker] = []
        self._slots = threading.BoundedSemaphore(MATH_WORKERS)
        atexit.register(self.close)

    def ask(self, answer: str, expected: str) -> bool | None:
        seconds = time_left(WAIT_SECONDS, "waiting for a math worker")
        if not self._slots.acquire(timeout=seconds):
            raise BudgetExceeded(f"no math-verify worker was free within {seconds:.3g} s")
        try:
            with self._lock:
                worker = self._idle.pop() if self._idle else None
            worker = worker or _Worker()
            try:
                verdict = worker.ask(answer, expected)
            except RuntimeError:  # math-verify's own failure: the worker is still sound
                self._keep(worker)
                raise
            self._keep(worker)
            return verdict
        finally:
            self._slots.release()

    def _keep(self, worker: _Worker) -> None:
        with self._lock:
            self._idle.append(worker)

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for worker in idle:
            worker.close()


_workers = _Workers()


def _in_worker(answer: str, expected: str) -> bool | None:
    """:func:`compare` in a worker process, killed past its time (module doc)."""
    return _workers.ask(answer, expected)
