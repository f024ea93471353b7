"""Whether a tool-using step made a valid call: one definition for the tool-syntax reward and the viewer.

A call is valid when it parsed (action ``tool_call`` with a call), names a tool the trace lists,
did not come back ``unknown_tool``, and its arguments validate against that tool's input schema
(JSON Schema 2020-12, compiled once per schema; no remote ``$ref``). A listed tool whose input
schema is itself unusable leaves the call's validity unknowable, which is said, not guessed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import referencing.exceptions
from jsonschema import Draft202012Validator

from rewards._schemas import schema_validator
from sandbox.records import Step, Trace


@dataclass(frozen=True)
class CallValidity:
    """A step's call: ``valid``; else ``problem`` says why not, or ``unknowable`` why it cannot be told."""

    valid: bool
    problem: str | None = None
    unknowable: str | None = None


def uses_tool(step: Step) -> bool:
    """A step that called a tool or tried to (a broken call)."""
    return step.action in ("tool_call", "broken_call")


def call_validity(trace: Trace, step: Step) -> CallValidity:
    """The validity of ``step``'s call in ``trace`` (see the module doc)."""
    call = step.call
    if step.action != "tool_call" or call is None:
        return CallValidity(False, "the call did not parse")
    if step.result is not None and step.result.error_kind == "unknown_tool":
        return CallValidity(False, f"unknown tool {call.name!r}")
    spec = trace.tool(call.name)
    if spec is None:
        return CallValidity(False, f"the trace lists no tool {call.name!r}")
    validator = schema_validator(spec.input_schema)
    if isinstance(validator, str):
        return CallValidity(False, unknowable=f"tool {call.name!r} has an unusable input schema: {validator}")
    try:
        fits = validator.is_valid(call.arguments)
    except referencing.exceptions.Unresolvable as exc:
        unusable = f"unresolvable $ref: {exc}"
    except RecursionError:  # callers bound the arguments' depth, so only the schema recurses this deep
        unusable = "validating against it recurses without end (a $ref loop)"
    else:
        if fits:
            return CallValidity(True)
        return CallValidity(
            False, "arguments do not fit the schema" + _first_error(spec.input_schema, call.arguments)
        )
    return CallValidity(False, unknowable=f"tool {call.name!r} has an unusable input schema: {unusable}")


def _first_error(schema: dict[str, Any], arguments: dict[str, Any]) -> str:
    """``: where: what`` of the first schema error (the slow path, taken for invalid calls only)."""
    error = next(iter(Draft202012Validator(schema).iter_errors(arguments)), None)
    if error is None:
        return ""
    where = "/".join(str(part) for part in error.absolute_path)
    return f": {where + ': ' if where else ''}{error.message}"
