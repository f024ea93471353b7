"""The number reader that the ``number`` and ``math`` answer checks share: plain numbers, with
thousands separators, decimals, exponents, fractions ``3/4`` and percent signs, read as exact
fractions. A number with more than :data:`MAX_NUMBER_DIGITS` digits is not read."""

from __future__ import annotations

import re
import unicodedata
from fractions import Fraction

MAX_NUMBER_DIGITS = 1000
PERCENT = Fraction(1, 100)
# Minus signs that NFKC leaves alone.
MINUS_SIGNS = str.maketrans({"\u2212": "-", "\u2012": "-", "\u2013": "-", "\ufe63": "-"})

NUMBER = re.compile(
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


def prepare_numbers(text: str) -> str:
    """``text`` in NFKC with its minus signs as ASCII hyphens, ready for :data:`NUMBER`."""
    return unicodedata.normalize("NFKC", text).translate(MINUS_SIGNS)


def to_fraction(match: re.Match[str]) -> Fraction | None:
    """The exact value of a :data:`NUMBER` match; None for a zero denominator or too many digits."""
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
