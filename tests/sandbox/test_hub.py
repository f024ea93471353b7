import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from sandbox.hub import ToolHub, load_config
from sandbox.records import ConfigError, ServerStartError

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
CRASHY = {"command": "python", "args": [str(FIXTURES / "crashy_server.py")]}


def test_config_missing_command_fails_before_start() -> None:
    with pytest.raises(ConfigError, match="command 'no-such-mcp-server' not found"):
        load_config({"mcpServers": {"x": {"command": "no-such-mcp-server"}}})


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"servers": {}}, "mcpServers"),
        ({"mcpServers": {"x": {}}}, "exactly one of"),
        ({"mcpServers": {"x": {"command": "python", "url": "http://a"}}}, "exactly one of"),
        ({"mcpServers": {"x": {"url": "ftp://a"}}}, "http://"),
        ({"mcpServers": {"x": {"command": "python", "args": "-m x"}}}, "list of strings"),
    ],
)
def test_config_errors_say_what_is_wrong(raw: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(raw)


def test_config_file_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ConfigError, match="not JSON"):
        load_config(bad)


def test_python_command_means_this_interpreter() -> None:
    config = load_config({"mcpServers": {"x": CRASHY}})
    assert config["x"].command == sys.executable


@pytest.mark.anyio
async def test_crashed_server_is_recorded_and_restarted() -> None:
    async with ToolHub(load_config({"mcpServers": {"crashy": CRASHY}}), call_timeout=5) as hub:
        with anyio.fail_after(30):
            first = await hub.call("echo", {"text": "a"})
            crashed = await hub.call("crash", {})
            after = await hub.call("echo", {"text": "b"})
    assert not first.is_error
    assert crashed.is_error and crashed.error_kind == "server_crashed" and "restarted" in crashed.text
    assert not after.is_error and after.text.startswith("b (pid")
    assert first.text.split("pid")[1] != after.text.split("pid")[1]  # a new process answered
    assert hub.restarts == {"crashy": 1}


@pytest.mark.anyio
async def test_hung_call_times_out_and_the_server_comes_back() -> None:
    async with ToolHub(load_config({"mcpServers": {"crashy": CRASHY}}), call_timeout=1.0) as hub:
        with anyio.fail_after(30):
            hung = await hub.call("hang", {"seconds": 60})
            after = await hub.call("echo", {"text": "ok"})
    assert hung.is_error and hung.error_kind == "timeout"
    assert not after.is_error


@pytest.mark.anyio
async def test_unknown_tool_and_bad_arguments_are_results() -> None:
    async with ToolHub(load_config({"mcpServers": {"crashy": CRASHY}})) as hub:
        unknown = await hub.call("nope", {})
        bad = await hub.call("echo", {"text": 5})
    assert unknown.is_error and unknown.error_kind == "unknown_tool" and "echo" in unknown.text
    assert bad.is_error and bad.error_kind == "tool_error" and "validation error" in bad.text


@pytest.mark.anyio
async def test_server_that_exits_at_start_is_a_clear_error(tmp_path: Path) -> None:
    script = tmp_path / "dies.py"
    script.write_text("import sys; sys.exit(1)\n")
    hub = ToolHub(
        load_config({"mcpServers": {"dies": {"command": "python", "args": [str(script)]}}}), start_timeout=20
    )
    with anyio.fail_after(40), pytest.raises(ServerStartError, match=r"dies.*its stderr is in"):
        async with hub:
            pass


@pytest.mark.anyio
async def test_tools_are_scoped_to_a_tasks_servers() -> None:
    from servers.calculator import server as calculator
    from servers.weather import server as weather

    async with ToolHub.in_memory({"weather": weather, "calculator": calculator}) as hub:
        names = {t.name for t in hub.tools(["calculator"])}
        assert names == {"calculate"}
        refused = await hub.call(
            "get_daily_forecast", {"location": "Denver", "date": "today"}, servers=["calculator"]
        )
        assert refused.error_kind == "unknown_tool"
        with pytest.raises(ConfigError, match="unknown server"):
            hub.tools(["nope"])


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def http_server() -> Iterator[str]:
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, str(FIXTURES / "http_server.py"), str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.1)
    try:
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.mark.anyio
async def test_streamable_http_transport(http_server: str) -> None:
    async with ToolHub(load_config({"mcpServers": {"remote": {"url": http_server}}})) as hub:
        assert {t.name for t in hub.tools()} == {"echo", "crash", "hang"}
        result = await hub.call("echo", {"text": "over http"})
    assert not result.is_error and result.text.startswith("over http")
    assert hub.server_info()[0].transport == "http"


@pytest.mark.anyio
async def test_third_party_server_over_stdio() -> None:
    """mcp-server-time, a server written by others, installed from PyPI by the test set-up."""
    config = load_config(
        {"mcpServers": {"time": {"command": "mcp-server-time", "args": ["--local-timezone", "UTC"]}}}
    )
    async with ToolHub(config) as hub:
        assert {"get_current_time", "convert_time"} <= {t.name for t in hub.tools()}
        result = await hub.call(
            "convert_time", {"source_timezone": "UTC", "time": "12:00", "target_timezone": "Asia/Tokyo"}
        )
        bad = await hub.call("get_current_time", {"timezone": "Mars/Olympus"})
    assert not result.is_error and "21:00" in result.text
    assert bad.is_error and "Invalid timezone" in bad.text


@pytest.mark.anyio
async def test_server_that_cannot_come_back_gives_results_not_exceptions(tmp_path: Path) -> None:
    once = {"command": "python", "args": [str(FIXTURES / "once_server.py"), str(tmp_path / "started")]}
    async with ToolHub(load_config({"mcpServers": {"once": once}}), start_timeout=20) as hub:
        with anyio.fail_after(60):
            crashed = await hub.call("crash", {})
            later = await hub.call("echo", {"text": "anyone?"})
    assert crashed.is_error and "restart failed" in crashed.text
    assert later.is_error and later.error_kind == "server_crashed" and "unavailable" in later.text


@pytest.mark.anyio
async def test_concurrent_failures_restart_the_server_once() -> None:
    async with ToolHub(load_config({"mcpServers": {"crashy": CRASHY}}), call_timeout=5) as hub:
        with anyio.fail_after(60):
            async with anyio.create_task_group() as group:
                for _ in range(3):
                    group.start_soon(hub.call, "crash", {})
            after = await hub.call("echo", {"text": "ok"})
    assert not after.is_error
    assert hub.restarts == {"crashy": 1}


# A server that prints what is not JSON-RPC on stdout (issue 14): the hub says so, naming the first line.
NOISY_START = {"command": "sh", "args": ["-c", "seq 3301; sleep 60"]}
NOT_JSON_RPC = "not a JSON-RPC message"


@pytest.mark.anyio
async def test_a_server_that_prints_non_json_at_start_is_named_at_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    log = tmp_path / "servers.log"
    started = time.monotonic()
    with pytest.raises(ServerStartError) as caught:
        async with ToolHub(load_config({"mcpServers": {"noisy": NOISY_START}}), log_path=log):
            pass
    assert time.monotonic() - started < 15  # not the 30 s start timeout
    message = str(caught.value)
    assert message.startswith(
        f"server 'noisy' failed to start: it wrote a line on stdout that is {NOT_JSON_RPC}: '1'"
    )
    assert "did not answer" not in message
    assert not [r for r in caplog.records if "JSONRPC" in r.getMessage()]  # no traceback per line
    # No traceback per line in the log either (an empty log is not left behind at all).
    assert not log.exists() or log.read_text().count("\n") < 10


@pytest.mark.anyio
async def test_a_server_that_prints_non_json_during_a_call_is_a_protocol_error() -> None:
    noisy = {"command": "python", "args": [str(FIXTURES / "noisy_server.py"), "3301"]}
    async with ToolHub(load_config({"mcpServers": {"noisy": noisy}}), call_timeout=20) as hub:
        with anyio.fail_after(15):  # well inside the call timeout
            shouted = await hub.call("shout", {})
    assert shouted.is_error and shouted.error_kind == "protocol_error"
    assert shouted.text.startswith("server 'noisy' broke the protocol during the call: it wrote a line")
    assert f"{NOT_JSON_RPC}: 'log line 1'" in shouted.text and "the server was restarted" in shouted.text
    assert hub.restarts == {"noisy": 1}


@pytest.mark.anyio
async def test_a_structured_result_past_the_depth_bound_is_kept_as_text_only() -> None:
    from typing import Any

    from mcp.server import MCPServer

    server = MCPServer("deep")

    @server.tool()
    def deep(levels: int) -> dict[str, Any]:
        """A value nested ``levels`` deep."""
        value: Any = 1
        for _ in range(levels):
            value = {"a": value}
        return {"v": value}

    async with ToolHub.in_memory({"deep": server}) as hub:
        within = await hub.call("deep", {"levels": 60})
        past = await hub.call("deep", {"levels": 80})
    assert within.structured is not None
    assert past.structured is None and not past.is_error and past.text.count('"a"') == 80
