"""GBNF pieces for constrained mode: number ranges, byte-bounded strings, and a grammar's longest text.

* :func:`integer_range_rule` and :func:`decimal_range_rule` -- the body of a rule that accepts exactly
  the integers (or decimals with at most a few fraction digits) in a range, as alternatives of digit
  classes: ``[1, 999999]`` is ``[1-9] | [1-9] [0-9] | ... | [1-9] [0-9] [0-9] [0-9] [0-9] [0-9]``.
  llama.cpp's JSON-schema converter ignores ``minimum``/``maximum``; these replace its number rules.
* :func:`byte_chain_rules` -- rules ``PREFIX-N`` accepting at most ``N`` bytes of UTF-8 text from a set
  of character classes grouped by their encoded width. A token is at least one byte, so text of at most
  ``N`` bytes is at most ``N`` tokens, whatever the tokenizer.
* :func:`max_bytes` -- the longest text (in UTF-8 bytes) a grammar accepts from a rule, or infinity.
  Constrained mode sizes its bounds with it so every turn fits the turn's token limit.
"""

from __future__ import annotations

import math
import re
from fractions import Fraction

# One-sided ranges stop at 15 digits: every such integer is exact as a JSON number (below 2**53).
MAX_DIGITS = 15
MAX_MAGNITUDE = 10**MAX_DIGITS - 1
# A bounded ``number`` is written with at most this many digits after the point, and no exponent.
MAX_FRACTION_DIGITS = 6

Piece = list[tuple[int, int]]  # one digit class (low, high) per position


def _fixed_width(low: int, high: int, width: int) -> list[Piece]:
    """Digit-class sequences of exactly ``width`` digits (leading zeros allowed) for [low, high]."""
    if width == 0:
        return [[]]
    unit = 10 ** (width - 1)
    head_low, rest_low = divmod(low, unit)
    head_high, rest_high = divmod(high, unit)
    if head_low == head_high:
        return [[(head_low, head_low), *rest] for rest in _fixed_width(rest_low, rest_high, width - 1)]
    pieces: list[Piece] = []
    full_low = head_low if rest_low == 0 else head_low + 1
    full_high = head_high if rest_high == unit - 1 else head_high - 1
    if rest_low != 0:
        pieces += [[(head_low, head_low), *rest] for rest in _fixed_width(rest_low, unit - 1, width - 1)]
    if full_low <= full_high:
        pieces.append([(full_low, full_high)] + [(0, 9)] * (width - 1))
    if rest_high != unit - 1:
        pieces += [[(head_high, head_high), *rest] for rest in _fixed_width(0, rest_high, width - 1)]
    return pieces


def _canonical(low: int, high: int) -> list[Piece]:
    """Digit-class sequences for the integers in [low, high] (0 <= low) written without leading zeros."""
    pieces: list[Piece] = []
    for width in range(1, len(str(max(high, 0))) + 1):
        start = max(low, 0 if width == 1 else 10 ** (width - 1))
        end = min(high, 10**width - 1)
        if start <= end:
            pieces += _fixed_width(start, end, width)
    return pieces


def _render(piece: Piece, point_at: int | None = None) -> str:
    """A digit-class sequence as GBNF, with a ``.`` before the last ``point_at`` digits."""
    parts: list[str] = []
    literal = ""
    for position, (low, high) in enumerate(piece):
        if point_at and position == len(piece) - point_at:
            literal += "."
        if low == high:
            literal += str(low)
            continue
        if literal:
            parts.append(f'"{literal}"')
            literal = ""
        parts.append(f"[{low}-{high}]")
    if literal:
        parts.append(f'"{literal}"')
    return " ".join(parts)


def _scaled_alternatives(low: int, high: int, fraction: int) -> list[str]:
    """Alternatives for the numbers ``v / 10**fraction``, ``v`` in [low, high], written with exactly
    ``fraction`` digits after the point (a leading ``0`` before it when ``|v| < 10**fraction``)."""
    out: list[str] = []
    if low > high:
        return out
    if low < 0:  # the negative part: "-" and the magnitudes in [max(1, -high), -low]
        for piece in _magnitudes(max(1, -high), -low, fraction):
            out.append(f'"-" {_render(piece, fraction)}')
    if high >= 0:
        out += [_render(piece, fraction) for piece in _magnitudes(max(0, low), high, fraction)]
    return out


def _magnitudes(low: int, high: int, fraction: int) -> list[Piece]:
    if fraction == 0:
        return _canonical(low, high)
    unit = 10**fraction
    pieces: list[Piece] = []
    if low < unit:  # "0." and ``fraction`` digits
        pieces += _fixed_width(low, min(high, unit - 1), fraction + 1)
    if high >= unit:
        pieces += _canonical(max(low, unit), high)
    return pieces


def integer_range_rule(low: int | None, high: int | None) -> str:
    """The body of a GBNF rule accepting exactly the integers in [low, high] as JSON writes them.

    A missing bound stops at ``MAX_MAGNITUDE`` (15 digits). An empty range gives an empty string.
    """
    low = -MAX_MAGNITUDE if low is None else max(low, -MAX_MAGNITUDE)
    high = MAX_MAGNITUDE if high is None else min(high, MAX_MAGNITUDE)
    return " | ".join(_scaled_alternatives(low, high, 0))


def decimal_range_rule(
    low: Fraction | None,
    high: Fraction | None,
    *,
    low_exclusive: bool = False,
    high_exclusive: bool = False,
    fraction_digits: int = MAX_FRACTION_DIGITS,
) -> str:
    """The body of a GBNF rule accepting exactly the decimals in the range with at most
    ``fraction_digits`` digits after the point and no exponent (``2``, ``2.5``, ``-0.25``).

    A missing bound stops at ``MAX_MAGNITUDE``. An empty range gives an empty string.
    """
    alternatives: list[str] = []
    for fraction in range(fraction_digits + 1):
        unit = 10**fraction
        cap = MAX_MAGNITUDE * unit
        if low is None:
            first = -cap
        else:
            first = math.floor(low * unit) + 1 if low_exclusive else math.ceil(low * unit)
        if high is None:
            last = cap
        else:
            last = math.ceil(high * unit) - 1 if high_exclusive else math.floor(high * unit)
        # a value whose last fraction digit is 0 is already written with fewer digits
        alternatives += _scaled_alternatives(max(first, -cap), min(last, cap), fraction)
    return " | ".join(alternatives)


# --------------------------------------------------------------------------- byte-bounded text


def byte_chain_rules(prefix: str, classes: dict[int, str], size: int) -> dict[str, str]:
    """Rules ``PREFIX-1`` .. ``PREFIX-size``: ``PREFIX-n`` accepts any text of at most ``n`` bytes made
    of the alternatives in ``classes`` (encoded width -> GBNF alternatives of that many bytes)."""
    rules: dict[str, str] = {}
    for n in range(1, size + 1):
        options = []
        for width, alternative in sorted(classes.items()):
            if width > n:
                continue
            options.append(f"({alternative}) {prefix}-{n - width}" if n > width else f"({alternative})")
        rules[f"{prefix}-{n}"] = f"( {' | '.join(options)} )?"
    return rules


def chain_ref(prefix: str, size: int) -> str:
    """The GBNF that refers to at most ``size`` bytes of a :func:`byte_chain_rules` chain."""
    return f"{prefix}-{size}" if size > 0 else ""


# --------------------------------------------------------------------------- longest text of a grammar

_TOKEN_RE = re.compile(
    r"""\s+|"(?:\\.|[^"\\])*"|\[(?:\\.|[^\]\\])*\]|[A-Za-z0-9_-]+|\{\s*\d+\s*(?:,\s*\d*\s*)?\}|[()|?*+.]"""
)


def _parse_rules(grammar: str) -> dict[str, list[str]]:
    rules: dict[str, list[str]] = {}
    for line in grammar.splitlines():
        if "::=" not in line or line.lstrip().startswith("#"):
            continue
        name, _, body = line.partition("::=")
        tokens = []
        index = 0
        body = body.strip()
        while index < len(body):
            match = _TOKEN_RE.match(body, index)
            if match is None:
                raise ValueError(f"cannot read GBNF at {body[index : index + 20]!r}")
            if not match.group(0).isspace():
                tokens.append(match.group(0))
            index = match.end()
        rules[name.strip()] = tokens
    return rules


def _unescape(text: str) -> str:
    return re.sub(
        r"\\(x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|.)",
        lambda m: (
            chr(int(m.group(1)[1:], 16))
            if len(m.group(1)) > 1
            else {"n": "\n", "r": "\r", "t": "\t"}.get(m.group(1), m.group(1))
        ),
        text,
    )


def _class_width(token: str) -> int:
    """The most UTF-8 bytes one character of a character class can take."""
    body = token[1:-1]
    if body.startswith("^"):
        return 4
    chars = _unescape(body)
    return max((len(ch.encode("utf-8", "surrogatepass")) for ch in chars), default=0)


def max_bytes(grammar: str, start: str = "root") -> float:
    """The most UTF-8 bytes any text ``grammar`` accepts from rule ``start`` can take (``math.inf``
    when a repetition or a recursion makes it unbounded). Reads the GBNF llama.cpp reads, one rule a line."""
    rules = _parse_rules(grammar)
    memo: dict[str, float] = {}
    active: set[str] = set()

    def rule(name: str) -> float:
        if name in memo:
            return memo[name]
        if name in active:
            return math.inf  # recursion
        raise AssertionError(name)  # every rule is evaluated after the rules it names

    def alternatives(tokens: list[str], index: int) -> tuple[float, int]:
        best, index = sequence(tokens, index)
        while index < len(tokens) and tokens[index] == "|":
            value, index = sequence(tokens, index + 1)
            best = max(best, value)
        return best, index

    def sequence(tokens: list[str], index: int) -> tuple[float, int]:
        total = 0.0
        while index < len(tokens) and tokens[index] not in ("|", ")"):
            token = tokens[index]
            if token == "(":
                value, index = alternatives(tokens, index + 1)
                index += 1  # the ")"
            elif token.startswith('"'):
                value, index = float(len(_unescape(token[1:-1]).encode("utf-8", "surrogatepass"))), index + 1
            elif token.startswith("["):
                value, index = float(_class_width(token)), index + 1
            elif token == ".":
                value, index = 4.0, index + 1
            else:
                value, index = rule(token), index + 1
            while index < len(tokens) and (tokens[index] in ("?", "*", "+") or tokens[index].startswith("{")):
                value = _repeat(value, tokens[index])
                index += 1
            total += value
        return total, index

    # depth first, without recursion (a chain of byte rules is hundreds of rules deep): a rule is
    # evaluated once every rule it names is, and a rule still open when named again is a recursion
    stack: list[tuple[str, list[str]]] = []

    def open_rule(name: str) -> None:
        if name not in rules:
            raise ValueError(f"GBNF rule {name!r} is not defined")
        active.add(name)
        names = [t for t in rules[name] if t[0].isalnum() or t[0] in "_-"]
        stack.append((name, names))

    open_rule(start)
    while stack:
        name, names = stack[-1]
        while names and (names[-1] in memo or names[-1] in active):
            names.pop()
        if names:
            open_rule(names.pop())
            continue
        stack.pop()
        memo[name] = alternatives(rules[name], 0)[0]
        active.discard(name)
    return memo[start]


def _repeat(value: float, operator: str) -> float:
    if operator == "?":
        return value
    if operator in ("*", "+"):
        return math.inf if value > 0 else 0.0
    counts = operator[1:-1].split(",")
    if len(counts) == 1:
        return value * int(counts[0])
    if not counts[1].strip():
        return math.inf if value > 0 else value * int(counts[0])
    return value * int(counts[1])
