"""The servers package: its contract with MCP clients, the bundled config, and the stdio transport."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import anyio
import pytest
from jsonschema import Draft202012Validator
from mcp import Client, StdioServerParameters
from mcp.server import MCPServer

import servers

REPO_ROOT = Path(__file__).resolve().parents[2]
SERVERS: dict[str, MCPServer] = {
    "weather": servers.weather_server,
    "music": servers.music_server,
    "calculator": servers.calculator_server,
}
EXPECTED_TOOLS = {
    "weather": {"get_daily_forecast", "get_hourly_forecast", "list_locations"},
    "music": {"search_library", "search_catalog", "get_recently_played", "play", "now_playing"},
    "calculator": {"calculate"},
}


def test_all_is_sorted_and_resolvable() -> None:
    assert servers.__all__ == sorted(servers.__all__, key=lambda name: (not name.isupper(), name))
    for name in servers.__all__:
        assert getattr(servers, name) is not None


def test_unknown_attribute_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="nope"):
        _ = servers.nope  # type: ignore[attr-defined]


@pytest.mark.anyio
@pytest.mark.parametrize("name", sorted(SERVERS))
async def test_every_tool_and_parameter_is_described(name: str) -> None:
    async with Client(SERVERS[name]) as client:
        tools = (await client.list_tools()).tools
    assert {tool.name for tool in tools} == EXPECTED_TOOLS[name]
    for tool in tools:
        assert tool.description, f"{tool.name} has no description"
        for parameter, schema in tool.input_schema.get("properties", {}).items():
            assert schema.get("description"), f"{tool.name}.{parameter} has no description"


@pytest.mark.anyio
@pytest.mark.parametrize("name", sorted(SERVERS))
async def test_schemas_are_valid_json_schema(name: str) -> None:
    async with Client(SERVERS[name]) as client:
        tools = (await client.list_tools()).tools
    for tool in tools:
        Draft202012Validator.check_schema(tool.input_schema)
        assert tool.output_schema is not None, f"{tool.name} has no output schema"
        Draft202012Validator.check_schema(tool.output_schema)


@pytest.mark.anyio
@pytest.mark.parametrize("name", sorted(SERVERS))
async def test_string_parameters_are_bounded(name: str) -> None:
    async with Client(SERVERS[name]) as client:
        tools = (await client.list_tools()).tools
    for tool in tools:
        for parameter, schema in tool.input_schema.get("properties", {}).items():
            if schema.get("type") == "string":
                assert "maxLength" in schema, f"{tool.name}.{parameter} has no maxLength"


def test_mcp_json_starts_each_server_as_a_module() -> None:
    config = json.loads(servers.MCP_CONFIG.read_text(encoding="utf-8"))
    entries = config["mcpServers"]
    assert set(entries) == set(SERVERS) | {"files", "python", "fetch"}
    for name, entry in entries.items():
        assert entry["command"] == "python"
        assert entry["args"][:2] == ["-m", f"servers.{name}"]


@pytest.mark.parametrize("name", sorted(SERVERS))
def test_module_runs_alone_without_warnings(name: str) -> None:
    # stdin at EOF: the server starts, sees the client leave, and exits. Importing the package must not
    # import the module first (runpy's "found in sys.modules" RuntimeWarning).
    done = subprocess.run(
        [sys.executable, "-W", "error", "-m", f"servers.{name}"],
        input=b"",
        capture_output=True,
        cwd=REPO_ROOT,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()
    assert b"Warning" not in done.stderr
    assert done.stdout == b""


@pytest.mark.anyio
async def test_calculator_over_real_stdio() -> None:
    params = StdioServerParameters(command=sys.executable, args=["-m", "servers.calculator"], cwd=REPO_ROOT)
    with anyio.fail_after(30):
        async with Client(params) as client:
            result = await client.call_tool("calculate", {"expression": "17*24 - 39"})
    assert result.is_error is False
    assert result.structured_content is not None
    assert result.structured_content["exact"] == "369"
