"""Calculator: exact arithmetic on an expression, parsed without ``eval``.

Covers numbers (integers and decimals such as ``0.1`` or ``1e3``, taken exactly), ``+ - * / // % **``,
unary ``+``/``-`` and parentheses; ``×`` and ``÷`` are read as ``*`` and ``/``. Arithmetic is done on
:class:`fractions.Fraction`, so ``1/3 + 1/6`` is exactly ``1/2``.

Not covered: names, functions (no ``sqrt``), comparisons, percent signs, and powers whose exponent is
not a whole number (they are irrational in general). Work is bounded: the expression's length, the
exponent's size, and the size of every intermediate value, so no input can stall the server.

Run it over stdio with ``python -m servers.calculator``.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Callable
from decimal import Context, Decimal, InvalidOperation
from fractions import Fraction
from typing import Annotated

from mcp.server import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations
from pydantic import BaseModel, Field

MAX_EXPRESSION_CHARS = 500
MAX_EXPONENT = 1000
# Python refuses to print integers over 4300 digits (sys.int_info.str_digits_check_threshold), and
# values that large are never what a user meant; this bounds every intermediate value.
MAX_DIGITS = 4000
_MAX_BITS = math.ceil(MAX_DIGITS * math.log2(10))
DECIMAL_DIGITS = 13  # significant digits of the decimal rendering

_UNICODE_OPERATORS = str.maketrans({"×": "*", "÷": "/", "−": "-"})


class CalculationError(ValueError):
    """An expression the calculator will not evaluate; the message says why."""


class Calculation(BaseModel):
    """The value of an expression."""

    expression: str = Field(description="The expression as evaluated.")
    exact: str = Field(description="Exact value: an integer like '42' or a reduced fraction like '7/3'.")
    decimal: str = Field(description="Decimal rendering, rounded to 13 significant digits when not exact.")
    rounded: bool = Field(description="True when 'decimal' is an approximation of 'exact'.")


# --------------------------------------------------------------------------- evaluation


def _check_size(value: Fraction) -> Fraction:
    if max(value.numerator.bit_length(), value.denominator.bit_length()) > _MAX_BITS:
        raise CalculationError(f"the result has more than {MAX_DIGITS} digits")
    return value


def _divide(left: Fraction, right: Fraction) -> Fraction:
    if right == 0:
        raise CalculationError("division by zero")
    return left / right


def _floor_divide(left: Fraction, right: Fraction) -> Fraction:
    if right == 0:
        raise CalculationError("division by zero")
    return Fraction(left // right)


def _modulo(left: Fraction, right: Fraction) -> Fraction:
    if right == 0:
        raise CalculationError("modulo by zero")
    return left % right


def _power(base: Fraction, exponent: Fraction) -> Fraction:
    if exponent.denominator != 1:
        raise CalculationError(f"only whole-number exponents are supported, not {exponent}")
    power = exponent.numerator
    if abs(power) > MAX_EXPONENT:
        raise CalculationError(f"the exponent {power} is too large (the limit is ±{MAX_EXPONENT})")
    if base == 0 and power < 0:
        raise CalculationError("division by zero (zero to a negative power)")
    # Check the size before computing, so a huge power is refused without being built.
    if max(base.numerator.bit_length(), base.denominator.bit_length()) * abs(power) > _MAX_BITS + 64:
        raise CalculationError(f"the result has more than {MAX_DIGITS} digits")
    return Fraction(base**power)


_BINARY: dict[type[ast.operator], Callable[[Fraction, Fraction], Fraction]] = {
    ast.Add: lambda left, right: left + right,
    ast.Sub: lambda left, right: left - right,
    ast.Mult: lambda left, right: left * right,
    ast.Div: _divide,
    ast.FloorDiv: _floor_divide,
    ast.Mod: _modulo,
    ast.Pow: _power,
}

# What people type by mistake, with the hint that helps.
_HINTS: dict[type[ast.AST], str] = {
    ast.BitXor: "'^' is not allowed (use ** for powers)",
    ast.Name: "names are not allowed",
    ast.Call: "function calls are not allowed",
    ast.Attribute: "attribute access is not allowed",
    ast.Compare: "comparisons are not allowed",
}


def _not_allowed(node: ast.AST) -> CalculationError:
    hint = _HINTS.get(type(node))
    if hint is None:
        hint = f"{type(node).__name__} is not allowed"
    if isinstance(node, ast.Name):
        hint += f" ({node.id!r})"
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        hint += f" ({node.func.id!r})"
    return CalculationError(f"{hint}; only numbers, + - * / // % ** and parentheses are supported")


def _number(node: ast.Constant, source: str) -> Fraction:
    value = node.value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise CalculationError(f"the constant {value!r} is not a number")
    if isinstance(value, int):
        return _check_size(Fraction(value))
    # A float literal is read from its text, so 0.1 means exactly 1/10, not the nearest binary float.
    text = (ast.get_source_segment(source, node) or repr(value)).replace("_", "")
    try:
        decimal = Decimal(text)
    except InvalidOperation:
        raise CalculationError(f"cannot read the number {text!r}") from None
    if not decimal.is_finite() or abs(decimal.adjusted()) > MAX_DIGITS:
        raise CalculationError(f"the number {text} is out of range")
    return _check_size(Fraction(decimal))


def _evaluate(node: ast.AST, source: str) -> Fraction:
    if isinstance(node, ast.Constant):
        return _number(node, source)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        operand = _evaluate(node.operand, source)
        return -operand if isinstance(node.op, ast.USub) else operand
    if isinstance(node, ast.BinOp):
        operation = _BINARY.get(type(node.op))
        if operation is None:
            raise _not_allowed(node.op)
        left, right = _evaluate(node.left, source), _evaluate(node.right, source)
        return _check_size(operation(left, right))
    raise _not_allowed(node)


def evaluate(expression: str) -> Fraction:
    """The exact value of ``expression``; raises :class:`CalculationError` for anything unsupported."""
    source = expression.translate(_UNICODE_OPERATORS).strip()
    if not source:
        raise CalculationError("the expression is empty")
    if len(source) > MAX_EXPRESSION_CHARS:
        raise CalculationError(f"the expression is longer than {MAX_EXPRESSION_CHARS} characters")
    try:
        tree = ast.parse(source, mode="eval")
    except (SyntaxError, ValueError) as exc:  # ValueError: e.g. a NUL byte
        raise CalculationError(f"not a valid expression: {getattr(exc, 'msg', exc)}") from None
    except (RecursionError, MemoryError):
        raise CalculationError("the expression is nested too deeply") from None
    try:
        return _evaluate(tree.body, source)
    except RecursionError:
        raise CalculationError("the expression is nested too deeply") from None


def render_decimal(value: Fraction) -> tuple[str, bool]:
    """``value`` as a decimal string, and whether that string is rounded."""
    if value.denominator == 1:
        return str(value.numerator), False
    context = Context(prec=DECIMAL_DIGITS)
    decimal = context.divide(Decimal(value.numerator), Decimal(value.denominator))
    rounded = Fraction(decimal) != value
    # Plain notation for everyday sizes; scientific beyond, where a string of zeros would hide the value.
    text = format(decimal, "f") if -7 <= decimal.adjusted() < 21 else str(decimal)
    return text, rounded


def calculation(expression: str) -> Calculation:
    """Evaluate ``expression`` into a :class:`Calculation`."""
    value = evaluate(expression)
    decimal, rounded = render_decimal(value)
    return Calculation(expression=expression, exact=str(value), decimal=decimal, rounded=rounded)


# --------------------------------------------------------------------------- the server

_READ_ONLY = ToolAnnotations(read_only_hint=True, idempotent_hint=True, open_world_hint=False)

Expression = Annotated[
    str,
    Field(
        description=(
            "Arithmetic expression with numbers, + - * / // % ** and parentheses, "
            "e.g. '(1/3 + 1/6) * 12'. % is modulo; write percentages as fractions "
            "(15% of 240 is '240 * 15 / 100')."
        ),
        min_length=1,
        max_length=MAX_EXPRESSION_CHARS,
    ),
]


def make_server() -> MCPServer:
    """A calculator server (it keeps no state: every server object answers the same)."""
    server = MCPServer(
        "calculator",
        version="1.0.0",
        instructions="Exact arithmetic. Write the whole computation as one expression, e.g. '17*24 - 39'.",
    )

    @server.tool(annotations=_READ_ONLY)
    def calculate(expression: Expression) -> Calculation:
        """Evaluate an arithmetic expression exactly; returns the exact value and a decimal rendering."""
        try:
            return calculation(expression)
        except CalculationError as exc:
            shown = expression if len(expression) <= 80 else expression[:77] + "..."
            raise ToolError(f"cannot evaluate {shown!r}: {exc}") from None

    return server


server = make_server()

if __name__ == "__main__":
    server.run()  # stdio; MCPServer sends its logs to stderr, stdout is the wire
