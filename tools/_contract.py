"""The contract checker: what a model may do to a tool, done to it before a model does.

:func:`check_server` connects to an MCP server through a real session (the hub's: stdio, streamable
HTTP, or in memory) and, for every tool it lists:

- reads the tool: its input schema must be valid JSON Schema of ``"type": "object"`` and the tool
  must have a description (violations); every parameter should have a description (a warning: the
  tool works, but the model has to guess what the parameter means); a declared output schema must
  be valid JSON Schema too (a violation);
- calls it with ``examples`` argument objects generated from the input schema by
  hypothesis-jsonschema, the same ones on every run (``derandomize``). The examples use the declared
  parameters only: undeclared keys are what the extra-field check below is for;
- calls it with invalid arguments: each required parameter missing, each parameter of the wrong
  JSON type, an undeclared parameter (only where the schema forbids one), a 1 MB string in each
  string parameter. Every such object is checked against the input schema first, and only the
  ones the schema rejects count as invalid; a 1 MB string the schema allows is a stress call that
  must be answered, error or not.

What it expects, and what breaking it is (the finding's ``check`` in brackets):

- every call ends in a result within ``timeout`` -- a violation [timeout];
- the server stays up and the session keeps working -- a violation [crash, protocol];
- invalid arguments give an ``is_error`` result -- a violation [invalid_call];
- every error result carries a message -- a violation [error_message];
- results match the declared output schema -- a violation [output_schema];
- valid arguments give a result, not an error -- only a warning [valid_call]: a tool may rightly
  refuse values that its schema cannot rule out, such as an unknown city;
- the input schema can be generated from -- a warning [generation] (contradictory schemas, or
  ones hypothesis-jsonschema does not support); the invalid calls are still made.

``MCPServer`` checks its own tools' results against their output schemas and turns a mismatch into
an error result, so for its tools such a bug shows as a ``valid_call`` warning; servers that do not
check (the low-level ``Server``, other SDKs) are caught by the ``output_schema`` check.

After a crash, a timeout or a protocol failure the hub restarts the server and the tool's remaining
calls are skipped (one such failure is enough to fix, and each costs a restart); the other tools
are still checked.

The checker calls tools for real, with made-up arguments: a tool that writes, sends or deletes
will do so. Point it at a sandboxed or test instance of a server, never at one holding data that
matters.

hypothesis is pinned below 6.170.10 in the project's dependencies: hypothesis-jsonschema 0.23.1
fails on hypothesis 6.170.10 and later (``'many' object has no attribute 'more'``) and works up to
6.170.9.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from jsonschema import Draft202012Validator, SchemaError
from jsonschema.exceptions import best_match
from jsonschema.protocols import Validator
from jsonschema.validators import validator_for

from sandbox.hub import ServerConfig, ToolHub, load_config
from sandbox.records import ConfigError, ToolResult, ToolSpec

DEFAULT_EXAMPLES = 20
DEFAULT_TIMEOUT = 10.0
HUGE_STRING_CHARS = 1_000_000
EXTRA_PARAMETER = "unexpected_parameter"
_PREVIEW_CHARS = 160

Severity = Literal["violation", "warning"]
Check = Literal[
    "description",
    "parameter_description",
    "input_schema",
    "output_schema",
    "generation",
    "valid_call",
    "invalid_call",
    "error_message",
    "timeout",
    "crash",
    "protocol",
]
CaseKind = Literal["valid", "invalid", "stress"]
_COMPOSED = ("allOf", "anyOf", "oneOf", "$ref", "patternProperties", "unevaluatedProperties")

# The wrong value tried for a parameter, by the JSON type it has. Objects come first: no lax
# validator (pydantic's included) turns an object into a string, a number or a boolean, so a tool
# that accepts one really ignored its schema.
_WRONG_VALUES: tuple[tuple[str, Any], ...] = (
    ("object", {"unexpected": "object"}),
    ("array", ["unexpected", "array"]),
    ("string", "unexpected text"),
    ("number", 123.5),
)


# --------------------------------------------------------------------------- records


@dataclass(frozen=True)
class Finding:
    """One broken expectation: which tool, which check, how bad, and the arguments that showed it."""

    tool: str
    check: Check
    severity: Severity
    message: str
    arguments: str | None = None  # a short JSON preview


@dataclass(frozen=True)
class ToolReport:
    """What the checker did to one tool and what it found."""

    name: str
    findings: tuple[Finding, ...] = ()
    valid_calls: int = 0
    valid_errors: int = 0
    invalid_calls: int = 0
    invalid_rejected: int = 0
    stress_calls: int = 0
    skipped_calls: int = 0

    @property
    def violations(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "violation"]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "warning"]


@dataclass(frozen=True)
class ContractReport:
    """The checker's verdict on one server: a report per tool."""

    server: str
    transport: str
    tools: tuple[ToolReport, ...]
    examples: int
    timeout: float
    server_log: str | None = None  # where a stdio server's stderr went

    @property
    def findings(self) -> list[Finding]:
        return [finding for tool in self.tools for finding in tool.findings]

    @property
    def violations(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "violation"]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "warning"]

    @property
    def ok(self) -> bool:
        """True when no tool broke the contract (warnings allowed)."""
        return not self.violations

    def summary(self) -> str:
        """The report as plain text: a headline, then one line per finding."""
        lines = [
            f"server {self.server!r} ({self.transport}): {len(self.tools)} tool(s), "
            f"{len(self.violations)} violation(s), {len(self.warnings)} warning(s)"
        ]
        for finding in self.findings:
            lines.append(f"  {finding.severity} {finding.tool} [{finding.check}]: {finding.message}")
            if finding.arguments is not None:
                lines.append(f"    arguments: {finding.arguments}")
        return "\n".join(lines)


# --------------------------------------------------------------------------- checking


async def check_server(
    target: Any,
    *,
    name: str | None = None,
    examples: int = DEFAULT_EXAMPLES,
    timeout: float = DEFAULT_TIMEOUT,
) -> ContractReport:
    """Check every tool of one MCP server; see the module docstring for what is checked.

    ``target`` is a :class:`~sandbox.hub._hub.ServerConfig` (an entry of ``load_config``), a URL of a
    streamable HTTP server, ``StdioServerParameters``, or a server object (in memory) -- anything
    ``mcp.Client`` takes. Start failures raise :class:`~sandbox.records._errors.ServerStartError`.
    """
    if examples < 0:
        raise ValueError(f"examples must be 0 or more, not {examples}")
    if timeout <= 0:
        raise ValueError(f"timeout must be positive, not {timeout}")
    config = _server_config(target, name)
    async with ToolHub({config.name: config}, call_timeout=timeout) as hub:
        reports = [await _check_tool(hub, spec, examples, timeout) for spec in hub.tools()]
        log = str(hub.log_path) if config.transport == "stdio" else None
    return ContractReport(config.name, config.transport, tuple(reports), examples, timeout, log)


def assert_contract(report: ContractReport, *, allow_warnings: bool = True) -> None:
    """Fail (``AssertionError``) with the report's findings when it has a violation.

    With ``allow_warnings=False`` warnings fail it too. For pytest::

        report = await check_server(make_server(), examples=10)
        assert_contract(report)
    """
    failing = report.findings if not allow_warnings else report.violations
    if failing:
        raise AssertionError(report.summary())


def select_servers(config: str | Path, names: Sequence[str] = ()) -> list[ServerConfig]:
    """The servers of an ``mcpServers`` file (or one streamable HTTP URL) to check, in config order."""
    text = str(config)
    if text.startswith(("http://", "https://")):
        if names:
            raise ConfigError("--server picks entries of a config file; a URL is one server already")
        return [ServerConfig(name=text, url=text)]
    servers = load_config(config, only=names or None)  # a server not installed blocks only its own check
    unknown = [name for name in names if name not in servers]
    if unknown:
        missing = ", ".join(map(repr, unknown))
        raise ConfigError(f"{config}: no server named {missing}; it has: {', '.join(servers)}")
    return [servers[name] for name in names] if names else list(servers.values())


def _server_config(target: Any, name: str | None) -> ServerConfig:
    from mcp import StdioServerParameters

    if isinstance(target, ServerConfig):
        return target
    if isinstance(target, str) and target.startswith(("http://", "https://")):
        return ServerConfig(name=name or target, url=target)
    if isinstance(target, StdioServerParameters):
        return ServerConfig(
            name=name or Path(target.command).name,
            command=target.command,
            args=tuple(target.args),
            env=dict(target.env or {}),
            cwd=str(target.cwd) if target.cwd is not None else None,
        )
    label = name or str(getattr(target, "name", None) or type(target).__name__)
    return ServerConfig(name=label, server=target)


@dataclass(frozen=True)
class _Case:
    kind: CaseKind
    label: str
    arguments: dict[str, Any]


@dataclass
class _Tally:
    """Counts and findings of one tool while its calls run."""

    tool: str
    findings: list[Finding] = field(default_factory=list)
    valid_calls: int = 0
    valid_errors: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    invalid_calls: int = 0
    invalid_rejected: int = 0
    stress_calls: int = 0
    skipped_calls: int = 0

    def add(self, check: Check, severity: Severity, message: str, arguments: Any = None) -> None:
        preview = None if arguments is None else _preview(arguments)
        self.findings.append(Finding(self.tool, check, severity, message, preview))

    def report(self) -> ToolReport:
        if self.valid_errors:
            text, arguments = self.valid_errors[0]
            self.add(
                "valid_call",
                "warning",
                f"{len(self.valid_errors)} of {self.valid_calls} calls with schema-valid arguments came back "
                f"as errors, e.g. {_cut(text)!r}",
                arguments,
            )
        return ToolReport(
            self.tool,
            tuple(self.findings),
            self.valid_calls,
            len(self.valid_errors),
            self.invalid_calls,
            self.invalid_rejected,
            self.stress_calls,
            self.skipped_calls,
        )


async def _check_tool(hub: ToolHub, spec: ToolSpec, examples: int, timeout: float) -> ToolReport:
    tally = _Tally(spec.name)
    input_validator = _read_tool(spec, tally)
    if input_validator is None:  # no schema to generate from or to judge arguments by
        return tally.report()
    output_validator = _output_validator(spec, tally)
    valid = _generate(spec.input_schema, examples, tally)
    cases = [_Case("valid", "generated arguments", arguments) for arguments in valid]
    cases += invalid_cases(spec.input_schema, input_validator, valid[0] if valid else {})
    for index, case in enumerate(cases):
        result = await hub.call(spec.name, case.arguments, timeout=timeout)
        if not _judge(case, result, output_validator, timeout, tally):
            tally.skipped_calls = len(cases) - index - 1
            break
    return tally.report()


def _read_tool(spec: ToolSpec, tally: _Tally) -> Validator | None:
    """The static checks; the input schema's validator, or None when the schema is unusable."""
    if not spec.description.strip():
        tally.add("description", "violation", "the tool has no description: a model cannot tell what it does")
    schema = spec.input_schema
    problem = _schema_problem(schema)
    if problem is not None:
        tally.add("input_schema", "violation", f"the input schema is not valid JSON Schema: {problem}")
        return None
    if schema.get("type") != "object":
        tally.add("input_schema", "violation", 'the input schema must describe an object ("type": "object")')
        return None
    properties = schema.get("properties") or {}
    for parameter, subschema in properties.items():
        if not (isinstance(subschema, Mapping) and str(subschema.get("description") or "").strip()):
            tally.add("parameter_description", "warning", f"parameter {parameter!r} has no description")
    return _validator(schema)


def _output_validator(spec: ToolSpec, tally: _Tally) -> Validator | None:
    if spec.output_schema is None:
        return None
    problem = _schema_problem(spec.output_schema)
    if problem is not None:
        tally.add("output_schema", "violation", f"the output schema is not valid JSON Schema: {problem}")
        return None
    return _validator(spec.output_schema)


def _schema_problem(schema: Mapping[str, Any]) -> str | None:
    try:
        validator_for(schema, default=Draft202012Validator).check_schema(schema)
    except SchemaError as exc:
        where = "/".join(str(part) for part in exc.path)
        return f"{exc.message} (at /{where})" if where else exc.message
    return None


def _validator(schema: Mapping[str, Any]) -> Validator:
    validator: Validator = validator_for(schema, default=Draft202012Validator)(schema)
    return validator


def _judge(
    case: _Case, result: ToolResult, output_validator: Validator | None, timeout: float, tally: _Tally
) -> bool:
    """Record what one call showed; False when the tool's remaining calls should be skipped."""
    if result.error_kind == "timeout":
        tally.add("timeout", "violation", f"no answer within {timeout:g} s ({case.label})", case.arguments)
        return False
    rejection = _client_rejection(result)
    if rejection is not None:
        tally.add("output_schema", "violation", f"{rejection} ({case.label})", case.arguments)
        return False
    if result.error_kind == "server_crashed":
        tally.add(
            "crash",
            "violation",
            f"the server died or the session broke ({case.label}): {_cut(result.text)}",
            case.arguments,
        )
        return False
    if result.error_kind in ("protocol_error", "unknown_tool"):
        message = f"a protocol error instead of a result ({case.label}): {_cut(result.text)}"
        tally.add("protocol", "violation", message, case.arguments)
        return False
    _count(case, result, tally)
    if result.is_error and not result.text.strip():
        message = f"an error result with no message ({case.label})"
        tally.add("error_message", "violation", message, case.arguments)
    if case.kind == "invalid" and not result.is_error:
        tally.add("invalid_call", "violation", f"accepted {case.label}", case.arguments)
    if not result.is_error and output_validator is not None:
        _check_output(case, result, output_validator, tally)
    return True


def _count(case: _Case, result: ToolResult, tally: _Tally) -> None:
    if case.kind == "valid":
        tally.valid_calls += 1
        if result.is_error:
            tally.valid_errors.append((result.text, case.arguments))
    elif case.kind == "invalid":
        tally.invalid_calls += 1
        tally.invalid_rejected += result.is_error
    else:
        tally.stress_calls += 1


def _check_output(case: _Case, result: ToolResult, validator: Validator, tally: _Tally) -> None:
    if result.structured is None:
        message = f"declares an output schema but returned no structured content ({case.label})"
        tally.add("output_schema", "violation", message, case.arguments)
        return
    error = best_match(validator.iter_errors(result.structured))
    if error is not None:
        where = "/".join(str(part) for part in error.absolute_path)
        message = f"the result breaks the output schema at /{where}: {error.message} ({case.label})"
        tally.add("output_schema", "violation", _cut(message), case.arguments)


def _client_rejection(result: ToolResult) -> str | None:
    """The MCP client's complaint when it refused a result that breaks the output schema, else None.

    The SDK's client checks structured results against the tool's output schema itself and raises;
    the hub reports that as a failed call (``server_crashed``) whose text carries the SDK's words.
    """
    if result.error_kind != "server_crashed":
        return None
    if "has an output schema but did not return structured content" in result.text:
        return "declares an output schema but returned no structured content"
    start = result.text.find("Invalid structured content returned by tool")
    if start < 0:
        return None
    complaint = result.text[start:].removesuffix("; the server was restarted")
    return _cut(complaint.split("\nFailed validating")[0])


# --------------------------------------------------------------------------- arguments


def generate_arguments(schema: Mapping[str, Any], count: int) -> list[dict[str, Any]]:
    """Up to ``count`` distinct argument objects valid under ``schema``, the same ones on every run.

    Undeclared keys are left out unless the schema itself says what they may be. Raises whatever
    hypothesis-jsonschema raises for a schema it cannot generate from.
    """
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis_jsonschema import from_schema

    if count <= 0:
        return []
    focused = dict(schema)
    # additionalProperties only sees the properties beside it, so it is added only where they are all.
    if "properties" in schema and not any(key in schema for key in _COMPOSED):
        focused.setdefault("additionalProperties", False)
    found: dict[str, dict[str, Any]] = {}

    @settings(
        max_examples=count,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(from_schema(focused))
    def collect(value: dict[str, Any]) -> None:
        found.setdefault(json.dumps(value, sort_keys=True), value)

    collect()
    return list(found.values())[:count]


def _generate(schema: Mapping[str, Any], count: int, tally: _Tally) -> list[dict[str, Any]]:
    # The generator raises many kinds of errors for schemas it does not support (formats, patterns,
    # contradictions); each becomes a finding and the other checks go on.
    try:
        return generate_arguments(schema, count)
    except Exception as exc:
        message = f"cannot generate arguments from the input schema: {type(exc).__name__}: {exc}"
        tally.add("generation", "warning", _cut(message))
        return []


def invalid_cases(schema: Mapping[str, Any], validator: Validator, base: Mapping[str, Any]) -> list[_Case]:
    """Calls the schema rejects (missing, mistyped, undeclared, huge), each built from ``base``.

    A 1 MB string the schema allows is kept as a stress call; other candidates the schema allows
    (an undeclared key where any key may go) are dropped.
    """
    properties: Mapping[str, Any] = schema.get("properties") or {}
    required = [name for name in schema.get("required") or [] if isinstance(name, str)]
    candidates: list[tuple[str, dict[str, Any], bool]] = []  # (label, arguments, a stress call if valid)
    for name in required:
        candidates.append((f"required parameter {name!r} missing", _without(base, name), False))
    for name, subschema in properties.items():
        wrong = _wrong_value(name, subschema, base, validator)
        if wrong is not None:
            candidates.append((*wrong, False))
    extra = {**base, EXTRA_PARAMETER: "unexpected"}
    candidates.append((f"undeclared parameter {EXTRA_PARAMETER!r}", extra, False))
    huge = "x" * HUGE_STRING_CHARS
    for name, subschema in properties.items():
        if "string" in _types(subschema):
            label = f"a {HUGE_STRING_CHARS:,}-character string in {name!r}"
            candidates.append((label, {**base, name: huge}, True))
    cases: list[_Case] = []
    seen: set[str] = set()
    for label, arguments, stress in candidates:
        key = json.dumps(arguments, sort_keys=True)
        if key in seen:
            continue
        seen.add(key)
        if not validator.is_valid(arguments):
            cases.append(_Case("invalid", label, arguments))
        elif stress:
            cases.append(_Case("stress", label, arguments))
    return cases


def _wrong_value(
    name: str, subschema: Any, base: Mapping[str, Any], validator: Validator
) -> tuple[str, dict[str, Any]] | None:
    declared = _types(subschema)
    for json_type, value in _WRONG_VALUES:
        if json_type in declared or (json_type == "number" and "integer" in declared):
            continue
        arguments = {**base, name: value}
        if not validator.is_valid(arguments):
            expected = "/".join(sorted(declared)) or "another value"
            return f"{json_type} for {name!r} (expects {expected})", arguments
    return None


def _types(subschema: Any) -> set[str]:
    if not isinstance(subschema, Mapping):
        return set()
    declared = subschema.get("type")
    if isinstance(declared, str):
        return {declared}
    if isinstance(declared, list):
        return {t for t in declared if isinstance(t, str)}
    return set()


def _without(arguments: Mapping[str, Any], name: str) -> dict[str, Any]:
    return {key: value for key, value in arguments.items() if key != name}


def _preview(value: Any) -> str:
    def shrink(item: Any) -> Any:
        if isinstance(item, str) and len(item) > _PREVIEW_CHARS:
            return f"<{len(item):,} characters>"
        if isinstance(item, Mapping):
            return {key: shrink(inner) for key, inner in item.items()}
        if isinstance(item, list):
            return [shrink(inner) for inner in item]
        return item

    # JSON escapes C0 controls only; the other control characters are escaped too, for terminals.
    text = "".join(map(_printable, json.dumps(shrink(value), ensure_ascii=False)))
    return _cut(text, _PREVIEW_CHARS * 2)


def _printable(char: str) -> str:
    return f"\\u{ord(char):04x}" if unicodedata.category(char) in ("Cc", "Cs") else char


def _cut(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
