"""The calculator: exact results, precedence, refusals, and properties over generated input."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mcp import Client
from mcp.types import CallToolResult, TextContent

from servers.calculator import CalculationError, evaluate, render_decimal, server


def _text(result: CallToolResult) -> str:
    return " ".join(part.text for part in result.content if isinstance(part, TextContent))


async def _calculate(expression: str) -> CallToolResult:
    async with Client(server) as client:
        return await client.call_tool("calculate", {"expression": expression})


async def _value(expression: str) -> dict[str, Any]:
    result = await _calculate(expression)
    assert result.is_error is False, _text(result)
    assert result.structured_content is not None
    return result.structured_content


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("expression", "exact", "decimal"),
    [
        ("1/3 + 1/6", "1/2", "0.5"),
        ("7/3", "7/3", "2.333333333333"),
        ("-7/3", "-7/3", "-2.333333333333"),
        ("17*24 - 39", "369", "369"),
        ("240 * 15 / 100", "36", "36"),
        ("0.1 + 0.2", "3/10", "0.3"),
        ("2**64", "18446744073709551616", "18446744073709551616"),
        ("2**-2", "1/4", "0.25"),
        ("7 // 2", "3", "3"),
        ("-7 % 3", "2", "2"),
        ("6 × 7 ÷ 2", "21", "21"),
        ("1e3 + 1_000", "2000", "2000"),
    ],
)
async def test_exact_results(expression: str, exact: str, decimal: str) -> None:
    value = await _value(expression)
    assert (value["exact"], value["decimal"]) == (exact, decimal)
    assert value["rounded"] is (Fraction(value["decimal"]) != Fraction(exact))


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("expression", "exact"),
    [("2 + 3 * 4", "14"), ("(2 + 3) * 4", "20"), ("-2**2", "-4"), ("2**3**2", "512"), ("10 - 4 - 3", "3")],
)
async def test_precedence_follows_python(expression: str, exact: str) -> None:
    assert (await _value(expression))["exact"] == exact


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("expression", "reason"),
    [
        ("2**10000000", "exponent 10000000 is too large"),
        ("__import__('os')", "function calls are not allowed"),
        ("sqrt(2)", "function calls are not allowed ('sqrt')"),
        ("x + 1", "names are not allowed ('x')"),
        ("(1).__class__", "attribute access is not allowed"),
        ("2 ^ 10", "use ** for powers"),
        ("2 ** 0.5", "whole-number exponents"),
        ("'a' * 3", "is not a number"),
        ("1 < 2", "comparisons are not allowed"),
        ("1 +", "not a valid expression"),
        ("(" * 300, "not a valid expression"),
        ("1e999999999", "out of range"),
        ("10**1000 * 10**1000 * 10**1000 * 10**1000 * 10**1000", "more than 4000 digits"),
    ],
)
async def test_refusals_name_what_was_not_allowed(expression: str, reason: str) -> None:
    result = await _calculate(expression)
    assert result.is_error is True
    assert reason in _text(result)


@pytest.mark.anyio
@pytest.mark.parametrize("expression", ["1/0", "1 // (2 - 2)", "5 % 0", "0 ** -1"])
async def test_division_by_zero_is_a_tool_error(expression: str) -> None:
    result = await _calculate(expression)
    assert result.is_error is True
    assert "by zero" in _text(result)


@pytest.mark.anyio
async def test_overlong_expressions_are_rejected_by_the_schema() -> None:
    result = await _calculate("1+" * 300 + "1")
    assert result.is_error is True
    assert "at most 500 characters" in _text(result)


def test_decimal_rendering_of_tiny_and_huge_values() -> None:
    assert render_decimal(Fraction(1, 3 * 10**30)) == ("3.333333333333E-31", True)
    assert render_decimal(Fraction(10**40 + 1, 3))[0].endswith("E+39")
    assert render_decimal(Fraction(1, 8)) == ("0.125", False)


# --------------------------------------------------------------------------- properties

_OPERATORS = {
    "+": lambda left, right: left + right,
    "-": lambda left, right: left - right,
    "*": lambda left, right: left * right,
    "/": lambda left, right: None if right == 0 else left / right,
}

# An expression as (source text, exact value), or value None when it divides by zero somewhere.
Expression = tuple[str, Fraction | None]


def _literal(number: int) -> Expression:
    return (f"({number})" if number < 0 else str(number)), Fraction(number)


def _power(pair: tuple[Expression, int]) -> Expression:
    (text, value), exponent = pair
    if value is None or (value == 0 and exponent < 0):
        return f"{text} ** ({exponent})", None
    return f"{text} ** ({exponent})", value**exponent


def _binary(triple: tuple[Expression, str, Expression]) -> Expression:
    (left_text, left), operator, (right_text, right) = triple
    value = None if left is None or right is None else _OPERATORS[operator](left, right)
    return f"({left_text} {operator} {right_text})", value


_leaves = st.integers(-50, 50).map(_literal)
_atoms = st.one_of(_leaves, st.tuples(_leaves, st.integers(-3, 3)).map(_power))
_expressions = st.recursive(
    _atoms,
    lambda children: st.tuples(children, st.sampled_from(sorted(_OPERATORS)), children).map(_binary),
    max_leaves=8,
)


@pytest.mark.anyio
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_expressions)
async def test_matches_fraction_arithmetic(expression: Expression) -> None:
    text, expected = expression
    result = await _calculate(text)
    if expected is None:
        assert result.is_error is True
        assert "by zero" in _text(result)
    else:
        assert result.is_error is False, _text(result)
        assert result.structured_content is not None
        assert result.structured_content["exact"] == str(expected)


@pytest.mark.anyio
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=600) | st.text(alphabet="0123456789+-*/%().e_ ", max_size=80))
async def test_arbitrary_text_never_crashes_the_tool(expression: str) -> None:
    result = await _calculate(expression)
    if result.is_error:
        # A crash shows only the bare prefix; every handled refusal carries a reason after it.
        assert _text(result).startswith("Error executing tool calculate: ")
    else:
        assert result.structured_content is not None


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=500) | st.text(alphabet="0123456789+-*/%().e_ ", max_size=120))
def test_evaluate_raises_only_calculation_errors(expression: str) -> None:
    try:
        value = evaluate(expression)
    except CalculationError:
        return
    assert isinstance(value, Fraction)
