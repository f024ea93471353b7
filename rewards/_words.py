"""An answer read as words: the tokens answer matching compares, and the structure its rules read.

Tokens. The text is put in Unicode NFKC and casefolded. A token is a run of letters, marks and digits,
or one symbol character (``+ = $ < > ° ©``...); punctuation and spaces only separate tokens. So
``<title>Test page</title>`` holds the tokens ``< title > test page < title >`` and ``heading=Hello``
holds ``heading = hello``: a word glued to markup or a sign is still a word. The English articles
(a, an, the) are dropped, and a contraction in ``n't`` reads as its stem and ``not`` (``won't`` is
``wo not``). The fraction and division slashes (``⁄ ∕``) read as ``/``.

Structure, for the anti-hedging rules of :mod:`rewards._outcome`:

- a *clause* ends at ``. ! ? ; :`` followed by a space or the end, and at a line break; a clause whose
  first word is "or" continues the one before it;
- an *item* ends where its clause does, at a comma followed by a space, at a bracket, at a dash
  (``—``, ``–``, or ``-`` between spaces), and at the words "or" and "but", which stand alone;
- a clause that holds the word "or" *offers alternatives*, its items being the alternatives;
- a token is *negated* when one of the :data:`NEGATION_WINDOW` tokens before it in its own item is a
  negation word (:data:`NEGATIONS`): "not warm", "won't be warm", "never Lyon", "(not BoyWithUke)".
  "No, it is Paris" does not negate Paris, as the comma ends the item, and "don't forget a warm
  coat" does not negate "coat", three tokens on (a window of three would). Markup does not count
  in the window: symbol tokens and a word right after ``<`` (a tag's name) are passed over, so
  "not <b>Paris</b>" negates Paris as "not Paris" does.
"""

from __future__ import annotations

import bisect
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import regex

ARTICLES = frozenset({"a", "an", "the"})
NEGATIONS = frozenset({"not", "no", "never", "neither", "nor", "without", "cannot"})
NEGATION_WINDOW = 2  # tokens before a word that may negate it (articles are not tokens)
DISJUNCTION = "or"
ITEM_WORDS = frozenset({DISJUNCTION, "but"})
SLASHES = str.maketrans({"\u2044": "/", "\u2215": "/"})

_PIECES = regex.compile(
    r"""
    (?P<clause>[.!?;:]+(?=\s|$)|\n)
  | (?P<item>,(?=\s|$)|[()\[\]{}\u2014\u2013]|(?<=\s)-(?=\s))
  | (?P<word>[\p{L}\p{M}\p{N}]+)
  | (?P<symbol>\p{S})
  | (?P<apostrophe>['\u2019])
    """,
    regex.VERBOSE,
)


@dataclass(frozen=True)
class Words:
    """An answer's tokens, each with its clause and item, and its start in the NFKC text."""

    tokens: tuple[str, ...]
    clauses: tuple[int, ...]
    items: tuple[int, ...]
    starts: tuple[int, ...]
    text: str  # the NFKC text the starts index into
    offering: frozenset[int]  # clauses that offer alternatives
    separators: frozenset[int]  # items that are a lone "or" or "but"
    markup: frozenset[int] = frozenset()  # tokens that are symbols or a tag's name

    def occurrences(self, wanted: Sequence[str]) -> Iterator[int]:
        """Where ``wanted`` (a token sequence, not empty) starts in the tokens."""
        size, first = len(wanted), wanted[0]
        for index, token in enumerate(self.tokens):
            if token == first and self.tokens[index : index + size] == tuple(wanted):
                yield index

    def negated(self, index: int) -> bool:
        """Whether a negation word stands within the window before token ``index``, in its item."""
        item, seen = self.items[index], 0
        for before in range(index - 1, -1, -1):
            if seen == NEGATION_WINDOW or self.items[before] != item:
                return False
            if before in self.markup:
                continue
            if self.tokens[before] in NEGATIONS:
                return True
            seen += 1
        return False

    def at(self, offset: int) -> int | None:
        """The first token starting at or after ``offset`` of the NFKC text."""
        index = bisect.bisect_left(self.starts, offset)
        return index if index < len(self.tokens) else None

    def alternatives(self, index: int, size: int) -> list[tuple[str, ...]]:
        """The other items of token ``index``'s clause when it offers alternatives (else none): each
        as its tokens without markup, leaving out the items the span ``index .. index + size`` touches."""
        clause = self.clauses[index]
        if clause not in self.offering:
            return []
        touched = set(self.items[index : index + size])
        grouped: dict[int, list[str]] = {}
        for position in self._clause_span(index):
            item = self.items[position]
            if position in self.markup:  # "<b>Lyon</b>" is the rival "Lyon"
                continue
            if item not in touched and item not in self.separators:
                grouped.setdefault(item, []).append(self.tokens[position])
        return [tuple(tokens) for tokens in grouped.values()]

    def _clause_span(self, index: int) -> range:
        clause = self.clauses[index]
        low = bisect.bisect_left(self.clauses, clause)
        high = bisect.bisect_right(self.clauses, clause)
        return range(low, high)


def prepare(text: str) -> str:
    """The text as tokens are read from: NFKC, with the fraction slashes as ``/``."""
    return unicodedata.normalize("NFKC", text).translate(SLASHES)


def tokens(text: str) -> tuple[str, ...]:
    """The tokens of ``text`` (module doc), without the structure."""
    return read_words(text).tokens


def read_words(text: str) -> Words:
    """``text`` as tokens with their clauses and items (module doc)."""
    builder = _Builder(prepare(text))
    for match in _PIECES.finditer(builder.text):
        builder.add(match)
    return builder.done()


class _Builder:
    """One pass over the pieces of a text, numbering clauses and items as it goes."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens: list[str] = []
        self.clauses: list[int] = []
        self.items: list[int] = []
        self.starts: list[int] = []
        self.offering: set[int] = set()
        self.separators: set[int] = set()
        self.markup: set[int] = set()
        self.clause = self.item = 0
        self.clause_open = False  # a clause break was seen and no word since
        self.last_end = -1  # where the last token made of a word ended, to join a contraction

    def add(self, match: regex.Match[str]) -> None:
        kind = match.lastgroup
        if kind == "clause":
            self.clause_open = True
            self.item += 1
        elif kind == "item":
            self.item += 1
        elif kind == "word":
            self._word(match.group().casefold(), match.start(), match.end())
        elif kind == "symbol":
            self._start_clause(match.group())
            self.markup.add(len(self.tokens))
            self._push(match.group(), match.start())

    def _word(self, word: str, start: int, end: int) -> None:
        if word == "t" and self._after_contraction(start):
            self.tokens[-1] = self.tokens[-1][:-1]  # "won" "t" -> "wo" "not"
            self._push("not", start)
            return
        self._start_clause(word)
        if word in ARTICLES:
            return
        self.last_end = end
        if self.tokens and self.tokens[-1] == "<" and self.starts[-1] >= start - 2:  # <name or </name
            self.markup.add(len(self.tokens))
        if word in ITEM_WORDS:
            self.item += 1
            self.separators.add(self.item)
            if word == DISJUNCTION:
                self.offering.add(self.clause)
            self._push(word, start)
            self.item += 1
            return
        self._push(word, start)

    def _after_contraction(self, start: int) -> bool:
        return (
            bool(self.tokens)
            and self.last_end == start - 1
            and self.text[start - 1] in "'\u2019"
            and self.tokens[-1].endswith("n")
            and len(self.tokens[-1]) > 1
        )

    def _start_clause(self, first: str) -> None:
        if self.clause_open and first != DISJUNCTION:
            self.clause += 1
        self.clause_open = False

    def _push(self, token: str, start: int) -> None:
        self.tokens.append(token)
        self.clauses.append(self.clause)
        self.items.append(self.item)
        self.starts.append(start)

    def done(self) -> Words:
        return Words(
            tokens=tuple(self.tokens),
            clauses=tuple(self.clauses),
            items=tuple(self.items),
            starts=tuple(self.starts),
            text=self.text,
            offering=frozenset(self.offering),
            separators=frozenset(self.separators),
            markup=frozenset(self.markup),
        )
