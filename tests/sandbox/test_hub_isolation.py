"""What a user can miss about servers (issue 16, items 9-12), each against a real server over stdio:
a stateful entry's fixed data path is shared by its episodes (warned), per-server tool filters,
start failures that quote the server's stderr, where server logs go, progress lines when output
is not a terminal, no idle process per stateful entry, and check-tool's refusal of fixed paths."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import anyio
import pytest
from hypothesis import given
from hypothesis import strategies as st
from openai_stub import Reply, StubServer, chat

from sandbox.hub import (
    STATE_DIR,
    STDERR_TAIL_LINES,
    ServerConfig,
    ToolHub,
    fixed_paths,
    load_config,
    outside_temp,
)
from sandbox.records import ConfigError, ServerStartError

ROOT = Path(__file__).resolve().parent.parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
CRASHY = {"command": "python", "args": [str(FIXTURES / "crashy_server.py")]}


def _files(root: str, **extra: object) -> dict:
    return {"command": "python", "args": ["-m", "servers.files", root], "cwd": str(ROOT), **extra}


def _config(**servers: dict) -> dict[str, ServerConfig]:
    return load_config({"mcpServers": servers})


def _children() -> set[int]:
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == os.getpid():
                found.add(int(entry))
    return found


# --------------------------------------------------------------------------- 9: fixed data paths


async def _second_episode_sees(servers: dict[str, ServerConfig]) -> tuple[bool, list[str]]:
    async with ToolHub(servers, pool_size=1) as hub:
        async with hub.episode() as first:
            wrote = await first.call("write_file", {"path": "note.txt", "content": "from episode 1"})
            assert not wrote.is_error, wrote.text
        async with hub.episode() as second:
            listing = await second.call("list_files", {})
        return "note.txt" in listing.text, hub.warnings


@pytest.mark.anyio
async def test_a_stateful_entry_with_a_fixed_path_is_warned_and_its_episodes_share_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fixed = str(tmp_path / "shared")
    with caplog.at_level(logging.WARNING, logger="sandbox.hub"), anyio.fail_after(90):
        shared, warnings = await _second_episode_sees(_config(files=_files(fixed, stateful=True)))
    said = [r.getMessage() for r in caplog.records if "stateful" in r.getMessage()]
    assert shared  # what the warning is about: episode 2 saw episode 1's file
    assert len(said) == 1 and said == warnings and "\n" not in said[0]
    assert f"args {fixed}" in said[0] and STATE_DIR in said[0]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="sandbox.hub"), anyio.fail_after(90):
        shared, warnings = await _second_episode_sees(_config(files=_files(STATE_DIR, stateful=True)))
    assert not shared and warnings == [] and not caplog.records


def test_fixed_paths_are_absolute_data_paths_in_args_and_env(tmp_path: Path) -> None:
    script = FIXTURES / "crashy_server.py"
    entry = {
        "command": "python",
        "args": [str(script), "--db=/srv/data/app.db", "relative/dir", "~/notes", f"/x/{STATE_DIR}/y"],
        "env": {
            "MEMORY_FILE_PATH": "/home/someone/memory.json",
            "PYTHONPATH": str(tmp_path),
            "MODE": "fast",
        },
    }
    found = fixed_paths(_config(x=entry)["x"])
    assert found == [
        ("args", "/srv/data/app.db"),
        ("args", "~/notes"),
        ("env MEMORY_FILE_PATH", "/home/someone/memory.json"),
    ]
    assert outside_temp(_config(x=_files(str(tmp_path)))["x"]) == []  # tmp_path is in the temporary folder
    assert fixed_paths(ServerConfig(name="u", url="http://127.0.0.1:1/mcp")) == []


@given(st.text(alphabet="/abc._-~=", max_size=30), st.text(alphabet="/abc._-~=", max_size=30))
def test_a_path_through_state_dir_is_never_fixed(before: str, after: str) -> None:
    arg = f"{before}{STATE_DIR}{after}"
    config = ServerConfig(name="x", command="/bin/true", args=(arg,), env={"DATA": arg})
    assert fixed_paths(config) == []


# --------------------------------------------------------------------------- 10: tool filters


@pytest.mark.anyio
async def test_an_allow_list_filters_what_is_offered_and_what_can_be_called() -> None:
    config = _config(only=CRASHY | {"tools": ["echo"]}, without=CRASHY | {"exclude_tools": ["crash", "hang"]})
    async with ToolHub({"only": config["only"]}) as hub:
        with anyio.fail_after(60):
            assert [spec.name for spec in hub.tools()] == ["echo"]
            before = await hub.call("echo", {"text": "a"})
            crashed = await hub.call("crash", {})
            after = await hub.call("echo", {"text": "b"})
    assert crashed.is_error and crashed.error_kind == "unknown_tool"
    assert "Available tools: echo" in crashed.text
    assert before.text.split("pid")[1] == after.text.split("pid")[1]  # the call never reached the server
    async with ToolHub({"without": config["without"]}) as hub:
        assert [spec.name for spec in hub.tools()] == ["echo"]
        assert (await hub.call("hang", {"seconds": 0})).error_kind == "unknown_tool"


@pytest.mark.anyio
async def test_unknown_names_in_a_filter_are_one_error_line_at_start() -> None:
    for key in ("tools", "exclude_tools"):
        config = _config(c=CRASHY | {key: ["echo", "ecko"]})
        with pytest.raises(ConfigError) as caught:
            async with ToolHub(config):
                pass
        message = str(caught.value)
        assert f"\"{key}\" names 'ecko', which it does not list (it lists: echo, crash, hang)" in message
        assert "\n" not in message


@pytest.mark.parametrize("value", ["echo", [1], [""], {"echo": True}])
def test_filter_keys_of_the_wrong_type_are_refused(value: object) -> None:
    for key in ("tools", "exclude_tools"):
        with pytest.raises(ConfigError, match=f"server 'c': \"{key}\" must be a list of tool names"):
            _config(c=CRASHY | {key: value})
    url = {"url": "http://127.0.0.1:1/mcp", "tools": ["a"], "exclude_tools": ["b"]}
    assert (_config(u=url)["u"].tools, _config(u=url)["u"].exclude_tools) == (("a",), ("b",))


# --------------------------------------------------------------------------- 11: failures, logs, processes


def _failing(code: str) -> dict[str, ServerConfig]:
    return _config(bad={"command": "python", "args": ["-c", code]})


@pytest.mark.anyio
async def test_a_start_failure_quotes_the_last_lines_of_the_servers_stderr() -> None:
    code = "import sys\nfor i in range(3000): print('line', i, file=sys.stderr)\nprint('no database at /nowhere', file=sys.stderr)\nsys.exit(1)"  # noqa: E501
    with pytest.raises(ServerStartError) as caught:
        async with ToolHub(_failing(code)):
            pass
    message = str(caught.value)
    assert "failed to start" in message and "no database at /nowhere" in message and "\n" not in message
    first_quoted = 3000 - STDERR_TAIL_LINES + 1  # the last lines, and no more
    assert f"line {first_quoted}" in message and f"line {first_quoted - 1} " not in message
    assert len(message) < 1000
    log = message.rsplit("(its stderr is in ", 1)[1].rstrip(")")
    assert "line 0\n" in Path(log).read_text()  # kept: the message names it
    Path(log).unlink()
    with pytest.raises(ServerStartError, match="it wrote nothing on stderr"):
        async with ToolHub(_failing("import sys; sys.exit(1)")):
            pass


@pytest.mark.anyio
async def test_a_stateful_entry_keeps_no_idle_process() -> None:
    before = _children()
    async with ToolHub(_config(c=CRASHY | {"stateful": True, "pool_size": 1})) as hub:
        with anyio.fail_after(60):
            await hub.warm()
            assert hub.pooled() == {"c": 1}
            assert len(_children() - before) == 1  # the one that listed the tools is the pooled one
            async with hub.episode() as episode:
                result = await episode.call("echo", {"text": "x"})
            assert not result.is_error and hub.restarts == {}


def _stub_run(tmp_path: Path, command: str, out: Path, servers: dict, env: dict | None = None) -> tuple:
    """``sandbox COMMAND`` against a scripted model with output piped; the stderr lines with the
    seconds they arrived at, and whether the process was still running at the first one."""
    tasks = tmp_path / "tasks.jsonl"
    rows = [
        {"id": f"t{i}", "prompt": f"What is {i} + 1?", "expected_answer": str(i + 1), "servers": ["files"]}
        for i in range(2)
    ]
    tasks.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    config = tmp_path / "mcp.json"
    config.write_text(json.dumps({"mcpServers": servers}), encoding="utf-8")
    lines: list[tuple[float, str, bool]] = []
    with StubServer(default=Reply(body=chat("<answer>1</answer>"), hold=1.5)) as stub:
        args = [sys.executable, "-m", "sandbox", command, "--tasks", str(tasks), "--servers", str(config)]
        args += ["--out", str(out), "--base-url", stub.url, "--rewards", "outcome"]
        if command == "generate":
            args += ["--n", "1"]
        started = time.perf_counter()
        process = subprocess.Popen(
            args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
        )
        out_text: list[str] = []
        reader = threading.Thread(target=lambda: out_text.append(process.stdout.read()))  # type: ignore[union-attr]
        reader.start()
        for line in process.stderr:  # type: ignore[union-attr]
            lines.append((time.perf_counter() - started, line.rstrip("\n"), process.poll() is None))
        process.wait(timeout=300)
        reader.join()
    return process.returncode, lines


def test_generate_prints_a_line_per_episode_as_it_ends_and_keeps_server_logs_in_the_folder(
    tmp_path: Path,
) -> None:
    fixed = tmp_path / "shared"
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "TMPDIR": str(tmp_path)}
    files = _files(str(fixed), stateful=True)
    files["args"] = ["-X", "importtime", *files["args"]]  # something on stderr for the log
    code, lines = _stub_run(tmp_path, "generate", out, {"files": files}, env)
    assert code == 0, lines
    texts = [text for _, text, _ in lines]
    warned = [text for text in texts if "is stateful, but its args" in text]
    assert len(warned) == 1 and str(fixed) in warned[0]
    episodes = [(at, text, running) for at, text, running in lines if "] t" in text]
    assert [text.split()[1] for _, text, _ in episodes] == ["t0", "t1"]
    assert all("steps" in text and "outcome" in text for _, text, _ in episodes)
    assert episodes[0][2]  # printed while the run still went on, not at its end
    assert "import time:" in (out / "servers.log").read_text()
    assert not list(tmp_path.glob("sandbox-servers-*.log"))  # no log left in the temporary folder


def test_run_prints_each_episode_before_the_end(tmp_path: Path) -> None:
    code, lines = _stub_run(
        tmp_path, "run", tmp_path / "traces.jsonl", {"files": _files(STATE_DIR, stateful=True)}
    )
    assert code == 0, lines
    episodes = [(text, running) for _, text, running in lines if "] t" in text]
    assert len(episodes) == 2 and episodes[0][1] and "1 steps" in episodes[0][0]
    assert not [text for _, text, _ in lines if "is stateful, but" in text]


# --------------------------------------------------------------------------- 12: check-tool


def _check_tool(tmp_path: Path, root: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "check.json"
    config.write_text(json.dumps({"mcpServers": {"files": _files(str(root))}}), encoding="utf-8")
    temp = tmp_path / "temp"  # the check-tool process's temporary folder: root is outside it
    temp.mkdir(exist_ok=True)
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "TMPDIR": str(temp)}
    command = [sys.executable, "-m", "sandbox", "check-tool", str(config), "--examples", "1", *extra]
    return subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False
    )


def test_check_tool_says_its_calls_are_real_and_refuses_fixed_paths_outside_temp(tmp_path: Path) -> None:
    outside = tmp_path / "data"
    refused = _check_tool(tmp_path, outside)
    assert refused.returncode == 2, refused.stderr
    (line,) = refused.stderr.strip().splitlines()
    assert f"server 'files' names a fixed path outside {tmp_path / 'temp'} (args {outside})" in line
    assert "--yes" in line and not outside.exists()  # nothing started
    allowed = _check_tool(tmp_path, outside, "--yes")
    assert allowed.returncode in (0, 1), allowed.stderr[-2000:]
    assert "check-tool makes real calls" in allowed.stdout and "write_file" in allowed.stdout
    inside = _check_tool(tmp_path, tmp_path / "temp" / "data")
    assert inside.returncode in (0, 1) and "makes real calls" in inside.stdout, inside.stderr[-2000:]


def test_the_temporary_folder_check_follows_tempfile() -> None:
    config = _config(f=_files("/srv/sandbox-data"))["f"]
    assert outside_temp(config) == [("args", "/srv/sandbox-data")]
    config = _config(f=_files(str(Path(tempfile.gettempdir()) / "x")))["f"]
    assert outside_temp(config) == []
