"""LaTeX in step texts rewritten in the plain notation that the equation reader parses.

Solutions mix prose with LaTeX: ``\\( 18 - 6 = 12 \\)``, ``\\[ \\frac{3}{4} \\times 8 = 6 \\]``,
``4 \\text{ feet} \\times 12 = 48``, ``\\$20``. :func:`plain_math` reads the commands with their brace
arguments (nesting included) and rewrites them:

- math delimiters ``\\( \\) \\[ \\] $$``, line breaks ``\\\\``, relations other than equality
  (``\\le \\ge \\neq \\equiv \\implies`` ...) and spacing such as ``\\quad`` become a break ``;``;
  so do ``\\begin`` and ``\\end`` of equation environments (``aligned``...), whose ``&`` is dropped;
- ``\\frac{a}{b}`` (``\\dfrac``, ``\\tfrac``, ``\\frac12``) becomes ``((a)/(b))``, ``\\sqrt{a}``
  becomes ``√(a)``, ``\\lfloor \\rfloor \\lceil \\rceil`` become ``⌊ ⌋ ⌈ ⌉``, ``\\times \\cdot \\ast``
  become ``*``, ``\\div`` ``/``, ``\\approx`` ``≈``;
- ``\\text{..}``, ``\\mathrm{..}``, ``\\textbf{..}``, ``\\mbox{..}`` ... become their content as words,
  ``\\boxed{x}`` becomes ``x``; ``\\$`` and ``\\%`` their symbols; ``{,}``, ``\\,`` and ``\\!`` (thousands
  separators) nothing; ``^\\circ`` the word "degrees"; ``\\left``, ``\\right`` and sizes nothing;
- matrices, arrays and cases, and every other command (``\\pi``, ``\\log``, ``\\sqrt[3]``,
  ``\\cdots``, ``\\pm``, ``\\binom`` ...) become the mark :data:`OPAQUE` (``⋯``): the
  equation reader treats it as an unknown, so no equation that touches it is checked.

A plain parser rather than latex2sympy: latex2sympy takes 5 to 40 ms per expression, reads decimals as
binary floats, and reads ``1,000`` as a set; exact checking needs none of that.
"""

from __future__ import annotations

import re

OPAQUE = "⋯"
BREAK = " ; "

FRACTIONS = frozenset(("frac", "dfrac", "tfrac", "cfrac"))
TEXT_COMMANDS = frozenset((
    "text", "textrm", "textbf", "textit", "textnormal", "textsf", "texttt", "mathrm", "mathit", "mathsf",
    "mbox", "hbox", "operatorname", "boxed", "fbox",
))  # fmt: skip
SYMBOLS = {
    "times": " * ", "cdot": " * ", "ast": " * ", "div": " / ", "approx": " ≈ ", "circ": " degrees ",
    "lfloor": "⌊", "rfloor": "⌋", "lceil": "⌈", "rceil": "⌉",
}  # fmt: skip
BREAKS = frozenset((
    "le", "leq", "ge", "geq", "lt", "gt", "ne", "neq", "equiv", "implies", "impliedby", "iff", "Rightarrow",
    "Longrightarrow", "rightarrow", "to", "Leftrightarrow", "therefore", "because", "quad", "qquad",
    "newline", "hline", "mid", "colon", "cr",
))  # fmt: skip
DROPPED = frozenset((
    "left", "right", "big", "Big", "bigg", "Bigg", "bigl", "bigr", "Bigl", "Bigr", "biggl", "biggr",
    "Biggl", "Biggr", "displaystyle", "textstyle", "limits", "nolimits",
))  # fmt: skip
EQUATION_ENVIRONMENTS = frozenset((
    "aligned", "align", "align*", "alignat", "alignat*", "equation", "equation*", "gather", "gather*",
    "gathered", "split", "eqnarray", "eqnarray*", "multline", "multline*",
))  # fmt: skip
SPACES = {",": "", "!": "", ";": " ", ":": " ", " ": " ", "$": "$", "%": "%", "&": " and ", "\\": BREAK}
DELIMITERS = frozenset("()[]")

_CIRCLE = re.compile(r"\^\s*\{?\s*\\circ\s*\}?")
_NAME = re.compile(r"[A-Za-z]+\*?")
_CONTINUED = re.compile(r"\s*&?\s*=")


def plain_math(text: str) -> str:
    """``text`` with its LaTeX rewritten as plain arithmetic, words and breaks (module docstring)."""
    if "\\" not in text and "$$" not in text and "{," not in text:
        return text
    text = _CIRCLE.sub(" degrees ", text.replace("{,}", "").replace("$$", BREAK))
    return _Reader(text).read()


class _Reader:
    """A one-pass reader of LaTeX commands and their brace arguments."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.at = 0
        self.after_digit = False  # the command being read follows a digit

    def read(self, end: str = "") -> str:
        """Rewrite up to the closing ``end`` brace (or the text's end), consuming it."""
        out: list[str] = []
        while self.at < len(self.text):
            char = self.text[self.at]
            self.at += 1
            if char == end:
                break
            if char == "{":
                out.append("(" + self.read("}") + ")")
            elif char == "\\":
                self.after_digit = _ends_with_digit(out)
                out.append(self._command())
            elif char == "&":
                out.append(" ")  # alignment point of an equation environment
            else:
                out.append(char)
        return "".join(out)

    def _command(self) -> str:
        match = _NAME.match(self.text, self.at)
        if match is None:  # a one-character command: \( \$ \, \\ ...
            char = self.text[self.at : self.at + 1]
            self.at += len(char)
            if char == "\\" and _CONTINUED.match(self.text, self.at):
                return " "  # "a &= b \\ &= c": the chain goes on
            return BREAK if char in DELIMITERS else SPACES.get(char, OPAQUE)
        self.at = match.end()
        return self._named(match.group())

    def _named(self, name: str) -> str:
        if name in FRACTIONS:
            # 2\frac{6}{7}: a mixed number or a product; nobody can tell, so neither is checked.
            mixed = OPAQUE if self.after_digit else ""
            numerator, denominator = self._argument(), self._argument()
            return f"{mixed}(({numerator})/({denominator}))"
        if name == "sqrt":
            return OPAQUE if self._optional() else f"√({self._argument()})"
        if name in TEXT_COMMANDS:
            return f" {self._argument()} "
        if name in ("begin", "end"):
            return self._environment(name)
        if name in SYMBOLS:
            return SYMBOLS[name]
        if name in BREAKS:
            return BREAK
        if name in DROPPED:
            if self.text[self.at : self.at + 1] == ".":  # \left. is an invisible delimiter
                self.at += 1
            return ""
        return f" {OPAQUE} "

    def _argument(self) -> str:
        """A brace group's rewritten content, or the single character that stands for it."""
        while self.text[self.at : self.at + 1].isspace():
            self.at += 1
        if self.text[self.at : self.at + 1] == "{":
            self.at += 1
            return self.read("}")
        if self.text[self.at : self.at + 1] == "\\":
            self.at += 1
            return self._command()
        char = self.text[self.at : self.at + 1]
        self.at += len(char)
        return char

    def _optional(self) -> bool:
        """Skip an optional ``[...]`` argument; whether there was one."""
        if self.text[self.at : self.at + 1] != "[":
            return False
        close = self.text.find("]", self.at)
        self.at = len(self.text) if close < 0 else close + 1
        return True

    def _environment(self, name: str) -> str:
        environment = self._argument().strip()
        if name == "end" or environment in EQUATION_ENVIRONMENTS:
            return BREAK
        # A matrix, array or cases: its cells are not sides of one equation.
        close = self.text.find(f"\\end{{{environment}}}", self.at)
        self.at = len(self.text) if close < 0 else close + len(f"\\end{{{environment}}}")
        return f" {OPAQUE} "


def _ends_with_digit(pieces: list[str]) -> bool:
    for piece in reversed(pieces):
        if piece.strip():
            return piece.rstrip()[-1].isdigit()
    return False
