"""An MCP server for imported BFCL tasks: each tool checks its arguments and records them.

``sandbox import bfcl`` writes the functions of every task to a JSON file (``tasks.functions.json``)
and one config entry per task that runs this server for that task's functions only::

    python -m servers.bfcl --functions tasks.functions.json --task simple_0

The tools do nothing but answer: arguments that fail the tool's input schema (JSON Schema 2020-12)
get an error result with the validator's message, so the model can retry; valid ones come back as
JSON (``{"function": ..., "arguments": ...}``, with the function's original BFCL name), so the
episode goes on and the trace records the call for the rewards to check.

The tools are data, not Python functions, so this is MCP's low-level ``Server`` with list and call
handlers rather than ``MCPServer``'s decorators.

The functions file::

    {"format": "sandbox-bfcl-functions", "version": 1,
     "tasks": {"simple_0": [{"name": "math_factorial", "original_name": "math.factorial",
                             "description": "...", "input_schema": {...}}]}}
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match
from mcp.server import Server, ServerRequestContext
from mcp.types import (
    CallToolRequestParams,
    CallToolResult,
    ListToolsResult,
    PaginatedRequestParams,
    TextContent,
    Tool,
)

FORMAT = "sandbox-bfcl-functions"
FORMAT_VERSION = 1


class FunctionsFileError(ValueError):
    """A functions file that cannot be served; the message names the file and what is wrong."""


@dataclass(frozen=True)
class Function:
    """One BFCL function as a tool: its exposed name, its original name, and its input schema."""

    name: str
    original_name: str
    description: str
    input_schema: dict[str, Any]


def load_functions(path: str | Path, task: str) -> list[Function]:
    """The functions of ``task`` in a functions file written by ``sandbox import bfcl``."""
    path = Path(path)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise FunctionsFileError(f"cannot read functions file {path}: {exc}") from exc
    if (
        not isinstance(raw, Mapping)
        or raw.get("format") != FORMAT
        or not isinstance(raw.get("tasks"), Mapping)
    ):
        raise FunctionsFileError(f"{path} is not a functions file written by 'sandbox import bfcl'")
    entries = raw["tasks"].get(task)
    if not isinstance(entries, list):
        raise FunctionsFileError(f"{path} has no task {task!r}")
    try:
        return [_function(entry) for entry in entries]
    except (KeyError, TypeError) as exc:
        raise FunctionsFileError(f"{path}: task {task!r}: malformed function entry ({exc!r})") from exc


def _function(entry: Mapping[str, Any]) -> Function:
    schema = entry["input_schema"]
    if not isinstance(schema, dict):
        raise TypeError("input_schema must be an object")
    name = str(entry["name"])
    return Function(name, str(entry.get("original_name", name)), str(entry.get("description", "")), schema)


def make_server(functions: Sequence[Function], name: str = "bfcl") -> Server[Any]:
    """A server whose tools are ``functions``: each validates its arguments and returns them."""
    by_name = {function.name: function for function in functions}
    validators = {function.name: Draft202012Validator(function.input_schema) for function in functions}
    tools = [
        Tool(name=function.name, description=function.description, input_schema=function.input_schema)
        for function in functions
    ]

    async def list_tools(
        ctx: ServerRequestContext[Any], params: PaginatedRequestParams | None
    ) -> ListToolsResult:
        return ListToolsResult(tools=tools)

    async def call_tool(ctx: ServerRequestContext[Any], params: CallToolRequestParams) -> CallToolResult:
        function = by_name.get(params.name)
        if function is None:
            return _error(f"Unknown tool: {params.name}. Available tools: {', '.join(by_name) or 'none'}")
        arguments = dict(params.arguments or {})
        error = best_match(validators[function.name].iter_errors(arguments))
        if error is not None:
            where = "/".join(str(part) for part in error.absolute_path)
            return _error(
                f"invalid arguments for {function.name}{f' at {where}' if where else ''}: {error.message}"
            )
        recorded = {"function": function.original_name, "arguments": arguments}
        return CallToolResult(
            content=[TextContent(type="text", text=json.dumps(recorded))], structured_content=recorded
        )

    return Server(name, version="1", on_list_tools=list_tools, on_call_tool=call_tool)


def _error(text: str) -> CallToolResult:
    return CallToolResult(content=[TextContent(type="text", text=text)], is_error=True)


async def _serve(server: Server[Any]) -> None:
    from mcp.server.stdio import stdio_server

    async with stdio_server() as (read_stream, write_stream):
        await server.run(read_stream, write_stream, server.create_initialization_options())


def main(argv: Sequence[str] | None = None) -> None:
    import anyio

    parser = argparse.ArgumentParser(prog="python -m servers.bfcl", description=__doc__.splitlines()[0])
    parser.add_argument("--functions", required=True, help="functions file written by 'sandbox import bfcl'")
    parser.add_argument("--task", required=True, help="serve this task's functions")
    options = parser.parse_args(argv)
    try:
        functions = load_functions(options.functions, options.task)
    except FunctionsFileError as exc:
        print(f"error: {exc}", file=sys.stderr)  # stdout is the MCP wire
        sys.exit(2)
    anyio.run(_serve, make_server(functions, f"bfcl-{options.task}"))


if __name__ == "__main__":
    main()
