"""Servers written by others, configured as their users configure them, through the real hub.

- Python over stdio: mcp-server-time (PyPI, mcp 2.x), and a server written for mcp 1.x (FastMCP)
  that needs its own interpreter (``.venv/mcp1``, made by ``make install-test``);
- Node over stdio: @modelcontextprotocol/server-filesystem (npm, in ``.venv/node``), found by its
  bare command name;
- over streamable HTTP on loopback: mcp-server-time's own server object, the mcp 1.x server, and a
  server written with the Node SDK.

For each: the hub lists the tools, calls them, and bad input comes back as an ``is_error`` result.
One short real-model episode runs against the Node filesystem server rooted in a temporary folder.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import anyio
import pytest

from sandbox.episodes import Limits, run_episode
from sandbox.hub import ToolHub, load_config
from sandbox.records import ConfigError, IdealCall, Sampling, ServerStartError, Task, ToolResult

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"
NODE_MODULES = ROOT / ".venv" / "node" / "node_modules"
MCP1_PYTHON = ROOT / ".venv" / "mcp1" / "bin" / "python"
TOKYO = {"source_timezone": "UTC", "time": "12:00", "target_timezone": "Asia/Tokyo"}

needs_node = pytest.mark.skipif(
    shutil.which("node") is None, reason="node is not installed: the Node MCP server tests need Node 18+"
)


@pytest.fixture(scope="module")
def node_modules() -> Path:
    if not (NODE_MODULES / ".bin" / "mcp-server-filesystem").exists():
        pytest.fail(
            f"@modelcontextprotocol/server-filesystem is not in {NODE_MODULES}: run `make install-test`"
        )
    return NODE_MODULES


@pytest.fixture(scope="module")
def mcp1_python() -> Path:
    if not MCP1_PYTHON.exists():
        pytest.fail(f"no mcp 1.x interpreter at {MCP1_PYTHON}: run `make install-test`")
    return MCP1_PYTHON


def _config(tmp_path: Path, servers: dict[str, Any]) -> Path:
    path = tmp_path / "mcp.json"
    path.write_text(json.dumps({"mcpServers": servers}), encoding="utf-8")
    return path


Config = Path | dict[str, Any]  # an mcp.json file, or the servers of one


def _load(config: Config) -> Any:
    return load_config(config if isinstance(config, Path) else {"mcpServers": config})


async def _calls(config: Config, calls: Sequence[tuple[str, dict[str, Any]]]) -> list[ToolResult]:
    async with ToolHub(_load(config)) as hub:
        return [await hub.call(name, arguments) for name, arguments in calls]


async def _tool_names(config: Config) -> tuple[set[str], str]:
    """The tools a server lists, and the version it reports."""
    async with ToolHub(_load(config)) as hub:
        (info,) = hub.server_info()
        return {tool.name for tool in hub.tools()}, info.version


# --------------------------------------------------------------------------- stdio


@needs_node
def test_node_filesystem_server_over_stdio(node_modules: Path, tmp_path: Path) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside.txt"
    root.mkdir()
    outside.write_text("not for the model")
    # A bare command name, as npm users write it: found in the environment's node/node_modules/.bin.
    config = _config(tmp_path, {"files": {"command": "mcp-server-filesystem", "args": [str(root)]}})
    names, version = anyio.run(_tool_names, config)
    assert {"read_text_file", "write_file", "list_directory", "search_files"} <= names and version
    results = anyio.run(
        _calls,
        config,
        [
            ("write_file", {"path": str(root / "note.txt"), "content": "pelican"}),
            ("read_text_file", {"path": str(root / "note.txt")}),
            ("list_directory", {"path": str(root)}),
            ("read_text_file", {"path": str(outside)}),
            ("read_text_file", {"path": str(root / ".." / "outside.txt")}),
            ("read_text_file", {}),
            ("write_file", {"path": str(root / "x.txt"), "content": 3}),
        ],
    )
    wrote, read, listed, *refused = results
    assert not wrote.is_error and (root / "note.txt").read_text() == "pelican"
    assert (read.text, read.structured) == ("pelican", {"content": "pelican"})
    assert "[FILE] note.txt" in listed.text
    assert all(r.is_error and r.error_kind == "tool_error" for r in refused), refused
    assert "Access denied" in refused[0].text and "Access denied" in refused[1].text
    assert "path" in refused[2].text and "content" in refused[3].text  # the SDK names the bad argument
    assert outside.read_text() == "not for the model" and not (root / "x.txt").exists()


def test_mcp1_server_with_its_own_interpreter_over_stdio(
    mcp1_python: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SANDBOX_NOT_PASSED", "kept in the parent")
    server = {
        "command": str(mcp1_python),
        "args": [str(FIXTURES / "mcp1_server.py")],
        # A stdio child sees only HOME, LOGNAME, PATH, SHELL, TERM and USER of ours, plus these.
        "env": {"GREETING": "hello"},
    }
    names, version = anyio.run(_tool_names, {"legacy": server})
    assert names == {"add", "read_env", "divide"} and version.startswith("1.")  # mcp 1.x reports its own
    add, bad_type, missing, zero, passed, unpassed, home = anyio.run(
        _calls,
        {"legacy": server},
        [
            ("add", {"a": 2, "b": 3}),
            ("add", {"a": "two", "b": 3}),
            ("add", {"a": 2}),
            ("divide", {"a": 1, "b": 0}),
            ("read_env", {"name": "GREETING"}),
            ("read_env", {"name": "SANDBOX_NOT_PASSED"}),
            ("read_env", {"name": "HOME"}),
        ],
    )
    assert (add.text, add.structured, add.is_error) == ("5", {"result": 5}, False)
    for refused, says in ((bad_type, "valid integer"), (missing, "Field required"), (zero, "divide by zero")):
        assert refused.is_error and refused.error_kind == "tool_error" and says in refused.text
    assert (passed.text, unpassed.text) == ("hello", "(unset)")
    assert home.text == os.environ["HOME"]


def test_mcp1_server_under_this_interpreter_fails_to_start_clearly() -> None:
    """Why such a server needs its own interpreter: mcp 2.x has no ``mcp.server.fastmcp``."""
    server = {"command": "python", "args": [str(FIXTURES / "mcp1_server.py")]}
    with pytest.raises(ServerStartError, match=r"'legacy' failed to start.*its stderr is in"):
        anyio.run(_tool_names, {"legacy": server})


def test_a_relative_command_starts_from_the_config_folder(mcp1_python: Path, tmp_path: Path) -> None:
    (tmp_path / "envs").mkdir()
    (tmp_path / "envs" / "mcp1").symlink_to(mcp1_python.parent.parent)
    config = _config(
        tmp_path,
        {"legacy": {"command": "envs/mcp1/bin/python", "args": [str(FIXTURES / "mcp1_server.py")]}},
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    with contextlib.chdir(elsewhere):
        assert load_config(config)["legacy"].command == str(tmp_path / "envs" / "mcp1" / "bin" / "python")
        (added,) = anyio.run(_calls, config, [("add", {"a": 20, "b": 22})])
    assert added.text == "42"


def test_a_command_in_node_modules_beside_the_config_is_found(tmp_path: Path) -> None:
    """``npm install SERVER`` in the config's folder puts the command in node_modules/.bin."""
    command = tmp_path / "node_modules" / ".bin" / "some-mcp-server"
    command.parent.mkdir(parents=True)
    command.write_text("#!/bin/sh\n")
    command.chmod(0o755)
    config = _config(tmp_path, {"some": {"command": "some-mcp-server"}})
    assert load_config(config)["some"].command == str(command)
    with pytest.raises(ConfigError, match="'some-mcp-server' not found on PATH"):
        load_config({"mcpServers": {"some": {"command": "some-mcp-server"}}})  # no folder to look beside


# --------------------------------------------------------------------------- streamable HTTP


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def _serve(command: list[str], port: int, tmp_path: Path, env: dict[str, str] | None = None) -> Iterator[str]:
    """Start a server on 127.0.0.1:``port``; yield its MCP URL once it accepts connections."""
    log = tmp_path / f"server-{port}.log"
    with log.open("wb") as errors:
        process = subprocess.Popen(command, stdout=errors, stderr=errors, env=env)
    try:
        deadline = time.monotonic() + 30
        while True:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"{command[1]} did not start: {log.read_text(errors='replace')[-2000:]}")
            time.sleep(0.1)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_mcp_server_time_over_http(tmp_path: Path) -> None:
    port = _free_port()
    with _serve([sys.executable, str(FIXTURES / "time_http_server.py"), str(port)], port, tmp_path) as url:
        names, version = anyio.run(_tool_names, {"time": {"url": url}})
        converted, bad_zone, missing = anyio.run(
            _calls,
            {"time": {"url": url}},
            [
                ("convert_time", TOKYO),
                ("get_current_time", {"timezone": "Mars/Olympus"}),
                ("convert_time", {"source_timezone": "UTC"}),
            ],
        )
    assert names == {"get_current_time", "convert_time"} and version
    assert converted.structured is not None and "T21:00" in converted.structured["target"]["datetime"]
    assert bad_zone.is_error and "Invalid timezone" in bad_zone.text
    assert missing.is_error and missing.text


def test_mcp1_server_over_http(mcp1_python: Path, tmp_path: Path) -> None:
    port = _free_port()
    command = [str(mcp1_python), str(FIXTURES / "mcp1_server.py"), "http", str(port)]
    with _serve(command, port, tmp_path) as url:
        added, refused = anyio.run(
            _calls, {"legacy": {"url": url}}, [("add", {"a": 40, "b": 2}), ("add", {"a": [], "b": 2})]
        )
    assert (added.text, added.is_error) == ("42", False)
    assert refused.is_error and "valid integer" in refused.text


@needs_node
def test_node_sdk_server_over_http(node_modules: Path, tmp_path: Path) -> None:
    port = _free_port()
    # CommonJS resolves bare imports through NODE_PATH: the SDK is the one server-filesystem installed.
    env = {**os.environ, "NODE_PATH": str(node_modules)}
    command = ["node", str(FIXTURES / "node_http_server.cjs"), str(port)]
    with _serve(command, port, tmp_path, env) as url:
        names, version = anyio.run(_tool_names, {"words": {"url": url}})
        counted, repeated, too_many, missing = anyio.run(
            _calls,
            {"words": {"url": url}},
            [
                ("word_count", {"text": "one two  three"}),
                ("repeat", {"word": "ha", "times": 3}),
                ("repeat", {"word": "ha", "times": 99}),
                ("word_count", {}),
            ],
        )
    assert names == {"word_count", "repeat"} and version == "1.0.0"
    assert (counted.text, repeated.text) == ("3", "ha ha ha")
    assert too_many.is_error and "1 to 10" in too_many.text
    assert missing.is_error and "text" in missing.text


# --------------------------------------------------------------------------- a real model


@needs_node
@pytest.mark.model
def test_a_real_episode_over_the_node_filesystem_server(
    node_modules: Path, llama_model: Any, tmp_path: Path
) -> None:
    from rewards import available_rewards, score_trace
    from sandbox.runs import first_difference, replay_trace

    root = tmp_path / "root"
    root.mkdir()
    (root / "note.txt").write_text("The secret word is pelican.\n")
    outside = tmp_path / "outside.txt"
    outside.write_text("not for the model")
    task = Task(
        id="fs-note",
        prompt=f"Read the file {root / 'note.txt'} and tell me the secret word written in it.",
        servers=["files"],
        expected_answer="pelican",
        answer_match="contains",
        ideal_calls=[IdealCall(name="read_text_file", arguments={"path": [str(root / "note.txt")]})],
    )
    config = load_config({"mcpServers": {"files": {"command": "mcp-server-filesystem", "args": [str(root)]}}})

    async def episode() -> Any:
        async with ToolHub(config) as hub, hub.episode(task.servers) as tools:
            return await run_episode(
                task, llama_model, tools, Limits(max_steps=3), sampling=Sampling(max_tokens=160)
            )

    trace = anyio.run(episode)
    assert {"read_text_file", "write_file"} <= {tool.name for tool in trace.tools}
    assert trace.servers[0].name == "files" and trace.servers[0].version
    assert trace.stop_reason in ("answer", "max_steps", "token_budget") and 1 <= len(trace.steps) <= 3
    for step in trace.steps:
        if step.finish_reason != "length":  # the grammar from the Node server's schemas held
            assert step.action in ("tool_call", "answer"), step.raw_text
        if step.action == "tool_call":
            assert step.result is not None and step.result.text  # answered by the real server
    assert outside.read_text() == "not for the model"
    # and the recorded episode replays without the server, scoring as it did
    rewards = {n: r for n, r in available_rewards().items() if n in ("outcome", "tool_syntax", "process")}
    scored = score_trace(trace, task, rewards)
    again = score_trace(anyio.run(replay_trace, scored), task, rewards)
    assert first_difference(scored, again) is None and again.rewards == scored.rewards
