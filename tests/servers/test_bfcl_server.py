"""The generated BFCL server: each tool validates its arguments and records them, in memory and over stdio."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client, StdioServerParameters

from servers.bfcl import FORMAT, FunctionsFileError, load_functions, make_server

FACTORIAL: dict[str, Any] = {
    "name": "math_factorial",
    "original_name": "math.factorial",
    "description": "Factorial of a number.",
    "input_schema": {
        "type": "object",
        "properties": {"n": {"type": "integer", "description": "The number."}},
        "required": ["n"],
    },
}
ROUTE: dict[str, Any] = {
    "name": "route",
    "original_name": "route",
    "description": "A route through points.",
    "input_schema": {
        "type": "object",
        "properties": {"points": {"type": "array", "items": {"type": "string"}}, "avoid": {}},
        "required": ["points"],
    },
}


def functions_file(folder: Path) -> Path:
    path = folder / "tasks.functions.json"
    content = {"format": FORMAT, "version": 1, "tasks": {"t1": [FACTORIAL, ROUTE], "t2": [ROUTE]}}
    path.write_text(json.dumps(content), encoding="utf-8")
    return path


def text(result: Any) -> str:
    return result.content[0].text


@pytest.mark.anyio
async def test_each_tool_records_its_arguments_under_the_original_name(tmp_path: Path) -> None:
    server = make_server(load_functions(functions_file(tmp_path), "t1"), "bfcl-t1")
    async with Client(server) as client:
        tools = (await client.list_tools()).tools
        assert [tool.name for tool in tools] == ["math_factorial", "route"]
        assert tools[0].input_schema == FACTORIAL["input_schema"]
        result = await client.call_tool("math_factorial", {"n": 5})
    assert not result.is_error
    assert json.loads(text(result)) == {"function": "math.factorial", "arguments": {"n": 5}}
    assert result.structured_content == {"function": "math.factorial", "arguments": {"n": 5}}


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("tool", "arguments", "message"),
    [
        (
            "math_factorial",
            {"n": "5"},
            "invalid arguments for math_factorial at n: '5' is not of type 'integer'",
        ),
        ("math_factorial", {}, "invalid arguments for math_factorial: 'n' is a required property"),
        ("route", {"points": ["a", 2]}, "invalid arguments for route at points/1: 2 is not of type 'string'"),
        ("nope", {}, "Unknown tool: nope. Available tools: math_factorial, route"),
    ],
)
async def test_invalid_arguments_are_an_error_result(
    tmp_path: Path, tool: str, arguments: dict, message: str
) -> None:
    server = make_server(load_functions(functions_file(tmp_path), "t1"))
    async with Client(server) as client:
        result = await client.call_tool(tool, arguments)
    assert result.is_error
    assert text(result) == message


@pytest.mark.anyio
async def test_an_untyped_parameter_takes_anything(tmp_path: Path) -> None:
    server = make_server(load_functions(functions_file(tmp_path), "t2"))
    async with Client(server) as client:
        result = await client.call_tool("route", {"points": ["a"], "avoid": {"tolls": True}})
    assert not result.is_error


@pytest.mark.anyio
async def test_over_stdio_from_the_repository_root(tmp_path: Path, repo_root: Path) -> None:
    path = functions_file(tmp_path)
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "servers.bfcl", "--functions", str(path), "--task", "t2"],
        cwd=str(repo_root),
    )
    with anyio.fail_after(30):
        async with Client(params) as client:
            assert [tool.name for tool in (await client.list_tools()).tools] == ["route"]
            good = await client.call_tool("route", {"points": ["Oslo", "Bergen"]})
            bad = await client.call_tool("route", {"points": "Oslo"})
    assert json.loads(text(good)) == {"function": "route", "arguments": {"points": ["Oslo", "Bergen"]}}
    assert bad.is_error and "'Oslo' is not of type 'array'" in text(bad)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json", "cannot read functions file"),
        ('{"tasks": {}}', "is not a functions file"),
        (json.dumps({"format": FORMAT, "tasks": {}}), "has no task 't1'"),
        (json.dumps({"format": FORMAT, "tasks": {"t1": [{"name": "x"}]}}), "malformed function entry"),
    ],
)
def test_a_bad_functions_file_is_named(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "f.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(FunctionsFileError, match=message):
        load_functions(path, "t1")


def test_the_command_exits_with_one_line_on_a_bad_file(tmp_path: Path, repo_root: Path) -> None:
    command = [
        sys.executable,
        "-m",
        "servers.bfcl",
        "--functions",
        str(tmp_path / "missing.json"),
        "--task",
        "t1",
    ]
    done = subprocess.run(command, cwd=repo_root, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2
    assert done.stdout == ""  # stdout is the MCP wire
    assert done.stderr.startswith("error: cannot read functions file")
