"""The contract checker: every bundled server passes, every broken fixture server is caught, and the
command exits 0, 1 or 2."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import anyio
import pytest
from jsonschema import Draft202012Validator
from mcp import StdioServerParameters

import servers
from sandbox.hub import load_config
from tools import ContractReport, assert_contract, check_server, generate_arguments, select_servers
from tools._contract import HUGE_STRING_CHARS, invalid_cases

ROOT = Path(__file__).resolve().parents[2]
BROKEN = ROOT / "tests" / "fixtures" / "broken_servers.py"
# Read from the config, so that a server added to servers/mcp.json is checked without editing this file.
BUNDLED = list(json.loads(servers.MCP_CONFIG.read_text(encoding="utf-8"))["mcpServers"])
EXAMPLES = 12


def _broken(kind: str) -> StdioServerParameters:
    return StdioServerParameters(command=sys.executable, args=[str(BROKEN), kind], cwd=str(ROOT))


def _fixture_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("broken_servers", BROKEN)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def _check(target: Any, **options: Any) -> ContractReport:
    with anyio.fail_after(120):
        return await check_server(target, examples=EXAMPLES, **options)


# --------------------------------------------------------------------------- bundled servers


@pytest.mark.anyio
@pytest.mark.parametrize("name", BUNDLED)
async def test_every_bundled_server_keeps_the_contract(name: str, tmp_path: Path) -> None:
    # Run from an empty folder: the calls are real, and a server with a relative root (files) writes
    # there rather than into the checkout.
    config = dataclasses.replace(load_config(servers.MCP_CONFIG)[name], cwd=str(tmp_path))
    report = await _check(config)
    assert_contract(report)
    assert report.server == name and report.transport == "stdio"
    assert report.tools
    for tool in report.tools:
        assert tool.valid_calls >= 1, f"{tool.name} was never called with valid arguments"
        assert tool.skipped_calls == 0
        assert tool.invalid_calls == tool.invalid_rejected


# --------------------------------------------------------------------------- broken servers


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("kind", "tool", "check"),
    [
        ("crashes", "divide", "crash"),
        ("hangs", "lookup", "timeout"),
        ("bad_schema", "count", "input_schema"),
        ("bad_output", "count_letters", "output_schema"),
        ("undescribed", "mystery", "description"),
        ("lenient", "echo_word", "invalid_call"),
    ],
)
async def test_each_defect_is_a_violation(kind: str, tool: str, check: str) -> None:
    report = await _check(_broken(kind), timeout=2.0)
    assert not report.ok
    found = {(f.tool, f.check) for f in report.violations}
    assert (tool, check) in found, report.summary()
    with pytest.raises(AssertionError, match=check):
        assert_contract(report)


@pytest.mark.anyio
async def test_a_crash_stops_that_tool_and_the_others_are_still_checked() -> None:
    report = await _check(_broken("crashes"))
    by_name = {tool.name: tool for tool in report.tools}
    crash = next(f for f in by_name["divide"].violations if f.check == "crash")
    assert crash.arguments is not None and '"b": 0' in crash.arguments
    assert by_name["divide"].skipped_calls > 0
    # The server was restarted, so the next tool is called normally.
    assert by_name["double"].valid_calls >= 1 and not by_name["double"].findings
    assert report.server_log is not None


@pytest.mark.anyio
async def test_a_tool_that_accepts_anything_is_caught_for_each_kind_of_invalid_call() -> None:
    report = await _check(_broken("lenient"))
    messages = [f.message for f in report.violations if f.check == "invalid_call"]
    assert any("'word' missing" in m for m in messages)
    assert any("object for 'word'" in m for m in messages)
    assert any("undeclared parameter" in m for m in messages)
    assert any(f"{HUGE_STRING_CHARS:,}-character string" in m for m in messages)


@pytest.mark.anyio
async def test_missing_parameter_descriptions_are_warnings() -> None:
    report = await _check(_broken("undescribed"))
    warned = [f for f in report.warnings if f.check == "parameter_description"]
    assert [f.message for f in warned] == ["parameter 'value' has no description"]
    assert [f.check for f in report.violations] == ["description"]


@pytest.mark.anyio
async def test_a_good_server_passes_and_its_refusals_are_warnings() -> None:
    report = await _check(_broken("good"))
    assert report.ok, report.summary()
    assert_contract(report)
    # shout refuses text without letters, which its schema allows: a warning, not a violation.
    assert [(f.tool, f.check) for f in report.warnings] == [("shout", "valid_call")]
    with pytest.raises(AssertionError, match="valid_call"):
        assert_contract(report, allow_warnings=False)


@pytest.mark.anyio
async def test_a_schema_nothing_satisfies_is_a_warning_and_the_invalid_calls_still_run() -> None:
    from mcp.types import CallToolResult, TextContent, Tool

    # Valid JSON Schema that no value satisfies: nothing to generate.
    schema = {
        "type": "object",
        "properties": {"n": {"type": "integer", "minimum": 5, "maximum": 3, "description": "A number."}},
        "required": ["n"],
    }
    tool = Tool(name="pick", description="Pick a number.", input_schema=schema)
    answer = CallToolResult(content=[TextContent(type="text", text="no such number")], is_error=True)
    server = _fixture_module()._low_level("contradiction", tool, answer)
    report = await _check(server)
    assert [f.check for f in report.warnings] == ["generation"]
    assert report.ok
    assert report.tools[0].valid_calls == 0 and report.tools[0].invalid_calls >= 2


# --------------------------------------------------------------------------- transports


@pytest.mark.anyio
async def test_in_memory_server_object() -> None:
    from servers.calculator import make_server

    report = await _check(make_server())
    assert report.transport == "memory" and report.server == "calculator"
    assert_contract(report)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def calculator_over_http() -> Iterator[str]:
    port = _free_port()
    code = (
        f"from servers.calculator import server; server.run('streamable-http', host='127.0.0.1', port={port})"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        for _ in range(300):
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.mark.anyio
async def test_streamable_http_server(calculator_over_http: str) -> None:
    report = await _check(calculator_over_http)
    assert report.transport == "http"
    assert_contract(report)
    assert report.tools[0].valid_calls >= 1


# --------------------------------------------------------------------------- arguments

SCHEMA: dict[str, Any] = {
    "type": "object",
    "$defs": {"Point": {"type": "object", "properties": {"x": {"type": "integer"}}, "required": ["x"]}},
    "properties": {
        "name": {"type": "string", "maxLength": 10},
        "count": {"type": "integer", "minimum": 0, "maximum": 5},
        "point": {"$ref": "#/$defs/Point"},
        "flag": {"type": "boolean"},
    },
    "required": ["name", "point"],
}


def test_generated_arguments_are_valid_distinct_declared_and_the_same_every_time() -> None:
    first = generate_arguments(SCHEMA, 15)
    assert 1 <= len(first) <= 15
    validator = Draft202012Validator(SCHEMA)
    for arguments in first:
        assert validator.is_valid(arguments), arguments
        assert set(arguments) <= set(SCHEMA["properties"])
    assert len({json.dumps(a, sort_keys=True) for a in first}) == len(first)
    assert generate_arguments(SCHEMA, 15) == first


def test_invalid_cases_are_rejected_by_the_schema_and_stress_cases_are_not() -> None:
    validator = Draft202012Validator(SCHEMA)
    base = generate_arguments(SCHEMA, 1)[0]
    cases = invalid_cases(SCHEMA, validator, base)
    kinds = {case.label: case.kind for case in cases}
    assert kinds["required parameter 'name' missing"] == "invalid"
    assert kinds["required parameter 'point' missing"] == "invalid"
    assert kinds["object for 'name' (expects string)"] == "invalid"
    assert kinds["object for 'count' (expects integer)"] == "invalid"
    assert kinds[f"a {HUGE_STRING_CHARS:,}-character string in 'name'"] == "invalid"  # maxLength 10
    # The schema allows undeclared keys, so that call says nothing and is not made.
    assert not any("undeclared" in label for label in kinds)
    for case in cases:
        assert validator.is_valid(case.arguments) == (case.kind == "stress")

    closed = {**SCHEMA, "additionalProperties": False, "properties": {**SCHEMA["properties"]}}
    closed["properties"]["name"] = {"type": "string"}
    labels = {c.label: c.kind for c in invalid_cases(closed, Draft202012Validator(closed), base)}
    assert labels["undeclared parameter 'unexpected_parameter'"] == "invalid"
    assert labels[f"a {HUGE_STRING_CHARS:,}-character string in 'name'"] == "stress"


# --------------------------------------------------------------------------- configs and the command


def test_select_servers_reads_the_config_and_refuses_unknown_names() -> None:
    from sandbox.records import ConfigError

    assert [c.name for c in select_servers(servers.MCP_CONFIG)] == BUNDLED
    assert [c.name for c in select_servers(servers.MCP_CONFIG, ["music"])] == ["music"]
    with pytest.raises(ConfigError, match="no server named 'nope'"):
        select_servers(servers.MCP_CONFIG, ["nope"])
    assert select_servers("http://127.0.0.1:9/mcp")[0].url == "http://127.0.0.1:9/mcp"


def _config(tmp_path: Path, *kinds: str) -> Path:
    entries = {kind: {"command": "python", "args": [str(BROKEN), kind]} for kind in kinds}
    path = tmp_path / "mcp.json"
    path.write_text(json.dumps({"mcpServers": entries}), encoding="utf-8")
    return path


def test_command_exits_0_when_every_tool_keeps_the_contract(
    sandbox_cli: Callable[..., subprocess.CompletedProcess[str]],
) -> None:
    arguments = ["servers/mcp.json", "--server", "calculator", "--examples", "5"]
    done = sandbox_cli("check-tool", *arguments, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "calculate" in done.stdout and "violations" in done.stdout


def test_command_exits_1_on_a_violation(
    sandbox_cli: Callable[..., subprocess.CompletedProcess[str]], tmp_path: Path
) -> None:
    config = _config(tmp_path, "good", "lenient")
    done = sandbox_cli("check-tool", str(config), "--examples", "5", timeout=300)
    assert done.returncode == 1, done.stderr[-3000:]
    assert "echo_word [invalid_call] accepted" in done.stdout
    assert "4 violation(s)" in done.stdout


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["tests/fixtures/no-such-config.json"], "cannot read server config"),
        (["servers/mcp.json", "--server", "nope"], "no server named 'nope'"),
        (["servers/mcp.json", "--examples", "-1"], "--examples"),
    ],
)
def test_command_exits_2_on_a_config_error(
    sandbox_cli: Callable[..., subprocess.CompletedProcess[str]], arguments: list[str], message: str
) -> None:
    done = sandbox_cli("check-tool", *arguments, timeout=300)
    assert done.returncode == 2, done.stdout[-3000:]
    assert message in done.stderr
