"""Configs written for other MCP clients, read by the hub: a server that is not installed blocks only
the runs that use it, and keys other clients honour are honoured or refused in one line."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import anyio
import pytest

from sandbox.hub import ToolHub, load_config
from sandbox.records import ConfigError, ServerStartError
from sandbox.runs import RunSpec, check_run_inputs

TIME = {"command": "mcp-server-time", "args": ["--local-timezone", "UTC"]}
CALCULATOR = {"command": "python", "args": ["-m", "servers.calculator"]}
MISSING = {"command": "no-such-mcp-server", "args": []}
FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def _write(tmp_path: Path, servers: dict) -> Path:
    path = tmp_path / "mcp.json"
    path.write_text(json.dumps({"mcpServers": servers}), encoding="utf-8")
    return path


def _tasks(tmp_path: Path, servers: list[str]) -> Path:
    path = tmp_path / "tasks.jsonl"
    task = {"id": "t", "prompt": "What is 2+2?", "servers": servers, "expected_answer": "4"}
    path.write_text(json.dumps(task) + "\n", encoding="utf-8")
    return path


# --------------------------------------------------------------------------- 16.6: one missing server


def test_a_missing_server_blocks_only_the_runs_that_use_it(tmp_path: Path) -> None:
    config = _write(tmp_path, {"calculator": CALCULATOR, "gone": MISSING})
    spec = RunSpec(tasks=_tasks(tmp_path, ["calculator"]), servers=config, out=tmp_path / "run")
    _, servers, _ = check_run_inputs(spec)
    assert list(servers) == ["calculator"]
    (result,) = anyio.run(_call, servers, "calculate", {"expression": "2+2"})
    assert not result.is_error and "4" in result.text
    uses_it = RunSpec(tasks=_tasks(tmp_path, ["calculator", "gone"]), servers=config, out=tmp_path / "r2")
    with pytest.raises(ConfigError, match="server 'gone': command 'no-such-mcp-server' not found"):
        check_run_inputs(uses_it)
    with pytest.raises(ConfigError, match="server 'gone'"):  # without a choice, every entry is checked
        load_config(config)


async def _call(servers: dict, name: str, arguments: dict) -> list:
    async with ToolHub(servers) as hub:
        return [await hub.call(name, arguments)]


def test_check_tool_on_another_server_is_not_blocked(
    sandbox_cli: Callable[..., subprocess.CompletedProcess[str]], tmp_path: Path
) -> None:
    config = _write(tmp_path, {"time": TIME, "gone": MISSING})
    done = sandbox_cli("check-tool", str(config), "--server", "time", "--examples", "2", timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "convert_time" in done.stdout
    refused = sandbox_cli("check-tool", str(config), "--server", "gone", timeout=300)
    assert refused.returncode == 2 and "server 'gone'" in refused.stderr, refused.stderr


# --------------------------------------------------------------------------- 16.7: other clients' keys


def test_disabled_servers_are_left_out_and_said_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = _write(tmp_path, {"time": TIME, "off": {**MISSING, "disabled": True}})
    with caplog.at_level("WARNING", logger="sandbox.hub"):
        servers = load_config(config)  # its command is not even looked up
    assert list(servers) == ["time"]
    said = [r.getMessage() for r in caplog.records if "'off'" in r.getMessage()]
    assert len(said) == 1 and "disabled" in said[0]
    (result,) = anyio.run(_call, servers, "convert_time", TOKYO)
    assert not result.is_error and "21:00" in result.text
    with pytest.raises(ConfigError, match="server 'off' is \"disabled\": true, but the tasks use it"):
        load_config(config, only=["time", "off"])
    with pytest.raises(ConfigError, match='"disabled" must be true or false'):
        load_config({"mcpServers": {"x": {**TIME, "disabled": "yes"}}})


TOKYO = {"source_timezone": "UTC", "time": "12:00", "target_timezone": "Asia/Tokyo"}


def test_environment_variables_are_expanded_as_claude_code_and_vs_code_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SANDBOX_TEST_ZONE", "UTC")
    monkeypatch.setenv("SANDBOX_TEST_SECRET", "s3cret")
    monkeypatch.delenv("SANDBOX_TEST_UNSET", raising=False)
    env_server = {
        "command": "python",
        "args": ["-c", ENV_SERVER, "${SANDBOX_TEST_UNSET:-fallback}"],
        "env": {"SECRET": "${SANDBOX_TEST_SECRET}", "ZONE": "${env:SANDBOX_TEST_ZONE}"},
    }
    servers = load_config({"mcpServers": {"env": env_server}})
    assert servers["env"].env == {"SECRET": "s3cret", "ZONE": "UTC"}
    assert servers["env"].args[-1] == "fallback"
    (result,) = anyio.run(_call, servers, "show", {})  # the child really got the expanded values
    assert result.text == "s3cret UTC fallback"
    unset = {"mcpServers": {"x": {**TIME, "env": {"KEY": "${SANDBOX_TEST_UNSET}"}}}}
    with pytest.raises(ConfigError, match="server 'x': environment variable SANDBOX_TEST_UNSET is not set"):
        load_config(unset)
    assert list(load_config({"mcpServers": {**unset["mcpServers"], "time": TIME}}, only=["time"])) == [
        "x",
        "time",
    ]  # an unused server's variables are not needed
    with pytest.raises(ConfigError, match=r"\$\{input:key\} is not an environment variable"):
        load_config({"mcpServers": {"x": {**TIME, "env": {"KEY": "${input:key}"}}}})


ENV_SERVER = """
import os, sys
from mcp.server import MCPServer
mcp = MCPServer("env")
@mcp.tool(structured_output=False)
def show() -> str:
    return " ".join([os.environ.get("SECRET", "-"), os.environ.get("ZONE", "-"), sys.argv[-1]])
mcp.run()
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _accepts(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_sse_servers_are_reached_over_sse(tmp_path: Path) -> None:
    port = _free_port()
    log = (tmp_path / "server.log").open("wb")
    command = [sys.executable, str(FIXTURES / "time_http_server.py"), str(port), "sse"]
    process = subprocess.Popen(command, stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 30
        while socket.socket().connect_ex(("127.0.0.1", port)) != 0:
            assert process.poll() is None and time.monotonic() < deadline, (
                tmp_path / "server.log"
            ).read_text()
            time.sleep(0.1)
        url = f"http://127.0.0.1:{port}/sse"
        servers = load_config({"mcpServers": {"time": {"type": "sse", "url": url}}})
        assert servers["time"].transport == "sse"
        (result,) = anyio.run(_call, servers, "convert_time", TOKYO)
        assert not result.is_error and "21:00" in result.text
        as_streamable = load_config({"mcpServers": {"time": {"url": url}}})  # what it was taken for before
        with pytest.raises(ServerStartError):
            anyio.run(_call, as_streamable, "convert_time", TOKYO)
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"type": "websocket", "url": "ws://x"}, "\"type\" 'websocket' is not one this hub speaks"),
        ({"type": "sse", **TIME}, '"type" \'sse\' needs "url"'),
        ({"type": "stdio", "url": "http://127.0.0.1:9/mcp"}, '"type" \'stdio\' needs "command"'),
    ],
)
def test_transport_types_this_hub_does_not_speak_are_refused(entry: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config({"mcpServers": {"x": entry}})
