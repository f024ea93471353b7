"""The python server: code runs in a bubblewrap sandbox, and every attempt to get out comes back as data.

Each attack is followed by an ordinary call, which must still work: the server stays up and answers.
"""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp.types import CallToolResult, TextContent

from sandbox.hub import ToolHub, load_config
from servers.python import Limits, SandboxUnavailable, make_server

REPO_ROOT = Path(__file__).resolve().parents[2]
# Short limits keep the attack tests quick; a normal call takes well under a second.
LIMITS = Limits(
    timeout_s=4.0, cpu_s=3, memory_mb=256, max_processes=16, max_output_bytes=20_000, tmp_mb=8, file_mb=4
)


def _text(result: CallToolResult) -> str:
    return " ".join(part.text for part in result.content if isinstance(part, TextContent))


async def _run(client: Client, code: str) -> dict[str, Any]:
    with anyio.fail_after(60):
        result = await client.call_tool("run_python", {"code": code})
    assert result.is_error is False, _text(result)
    assert result.structured_content is not None
    return result.structured_content


async def _still_answers(client: Client) -> None:
    after = await _run(client, "print(6 * 7)")
    assert (after["status"], after["stdout"]) == ("ok", "42\n")


@pytest.fixture
def client_limits() -> Limits:
    return LIMITS


@pytest.fixture
async def client(client_limits: Limits) -> Any:
    async with Client(make_server(client_limits)) as session:
        yield session


# --------------------------------------------------------------------------- ordinary runs


@pytest.mark.anyio
async def test_output_and_exit_status_come_back(client: Client) -> None:
    ok = await _run(client, "import sys\nprint('hello')\nprint('note', file=sys.stderr)")
    failed = await _run(client, "raise ValueError('bad input')")
    exited = await _run(client, "import sys; sys.exit(3)")
    assert ok == {
        "status": "ok",
        "exit_code": 0,
        "signal": None,
        "stdout": "hello\n",
        "stderr": "note\n",
        "timed_out": False,
        "output_truncated": False,
        "message": "exited with code 0",
    }
    assert failed["status"] == "error" and failed["exit_code"] == 1
    assert "ValueError: bad input" in failed["stderr"] and "ValueError: bad input" in failed["message"]
    assert (exited["status"], exited["exit_code"]) == ("error", 3)


@pytest.mark.anyio
async def test_runs_unprivileged_with_a_clean_environment(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOST_SECRET_TOKEN", "do-not-leak")
    code = """
import json, os
status = dict(line.split(":", 1) for line in open("/proc/self/status"))
print(json.dumps({
    "uid": os.getuid(), "euid": os.geteuid(), "pid": os.getpid(), "cwd": os.getcwd(),
    "cap_eff": status["CapEff"].strip(), "cap_prm": status["CapPrm"].strip(),
    "no_new_privs": status["NoNewPrivs"].strip(), "env": dict(os.environ),
}))
"""
    seen = json.loads((await _run(client, code))["stdout"])
    assert seen["uid"] != 0 and seen["euid"] != 0
    assert seen["cap_eff"] == seen["cap_prm"] == "0000000000000000"
    assert seen["no_new_privs"] == "1"
    assert seen["pid"] < 10  # its own PID namespace
    assert seen["cwd"] == "/tmp"
    assert "HOST_SECRET_TOKEN" not in seen["env"]
    assert set(seen["env"]) <= {"PATH", "HOME", "LANG", "PWD", "LC_CTYPE"}


@pytest.mark.anyio
async def test_calls_run_concurrently_and_the_loop_stays_free(client: Client) -> None:
    finished: list[str] = []

    async def slow(name: str) -> None:
        result = await _run(client, f"import time; time.sleep(1.5); print('{name}')")
        assert result["stdout"] == f"{name}\n"
        finished.append(name)

    async def quick() -> None:
        await anyio.sleep(0.3)
        await client.list_tools()
        finished.append("list_tools")

    async with anyio.create_task_group() as group:
        for name in ("a", "b", "c"):
            group.start_soon(slow, name)
        group.start_soon(quick)
    assert finished[0] == "list_tools"  # answered while the runs were going on
    assert sorted(finished[1:]) == ["a", "b", "c"]


@pytest.mark.anyio
async def test_code_over_the_size_limit_is_refused() -> None:
    async with Client(make_server(Limits(max_code_chars=100))) as client:
        result = await client.call_tool("run_python", {"code": "#" * 101})
        assert result.is_error is True
        assert "at most 100 characters" in _text(result)
        await _still_answers(client)


# --------------------------------------------------------------------------- attacks


@pytest.fixture
def loopback_listener() -> Iterator[socket.socket]:
    """A TCP server on the host's loopback that the sandbox must not reach."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.setblocking(False)
    yield listener
    listener.close()


@pytest.mark.anyio
async def test_no_network(client: Client, loopback_listener: socket.socket) -> None:
    port = loopback_listener.getsockname()[1]
    code = f"""
import socket
for address in [("1.1.1.1", 53), ("127.0.0.1", {port})]:
    try:
        socket.create_connection(address, timeout=2).close()
        print("CONNECTED", address)
    except OSError as exc:
        print("blocked", address, type(exc).__name__)
"""
    seen = await _run(client, code)
    assert "CONNECTED" not in seen["stdout"]
    assert seen["stdout"].count("blocked") == 2
    with pytest.raises(BlockingIOError):
        loopback_listener.accept()  # nobody knocked
    await _still_answers(client)


@pytest.mark.anyio
async def test_host_files_are_not_there(client: Client, tmp_path: Path) -> None:
    host_file = tmp_path / "host-only.txt"
    host_file.write_text("host data")
    targets = [
        str(host_file),
        str(REPO_ROOT / "README.md"),
        "/work",
        "/etc/passwd",
        "/root",
        str(Path.home()),
    ]
    code = f"""
import json, os
seen = {{}}
for path in {targets!r}:
    try:
        seen[path] = ["folder", os.listdir(path)] if os.path.isdir(path) else ["file", open(path).read()]
    except OSError as exc:
        seen[path] = ["denied", type(exc).__name__]
print(json.dumps(seen))
"""
    seen = json.loads((await _run(client, code))["stdout"])
    # Folders on the way to the interpreter's prefix exist inside, as bare mount points.
    mount_points = set(Path(os.path.realpath(sys.base_prefix)).parts)
    for path, (kind, detail) in seen.items():
        assert kind != "file", f"{path} was readable"
        assert kind == "denied" or set(detail) <= mount_points, f"{path} holds {detail}"
    assert seen[str(host_file)][0] == seen["/etc/passwd"][0] == "denied"
    await _still_answers(client)


@pytest.mark.anyio
async def test_writes_land_only_in_the_private_tmp(client: Client) -> None:
    marker = f"sandbox-write-{os.getpid()}.txt"
    prefix = os.path.realpath(sys.base_prefix)
    code = f"""
import os
for folder in ["/", "/usr", "/usr/lib", "/sandbox", "/dev", "/proc", {prefix!r}, "/tmp"]:
    path = os.path.join(folder, {marker!r})
    try:
        with open(path, "w") as handle:
            handle.write("x")
        print("WROTE", path)
    except OSError as exc:
        print("refused", path, type(exc).__name__)
"""
    seen = await _run(client, code)
    assert [line for line in seen["stdout"].splitlines() if line.startswith("WROTE")] == [
        f"WROTE /tmp/{marker}"
    ]
    assert not (Path("/tmp") / marker).exists()  # the host's /tmp never saw it
    fresh = await _run(client, f"import os; print(os.path.exists('/tmp/{marker}'))")
    assert fresh["stdout"] == "False\n"  # and the next run starts empty


@pytest.mark.anyio
async def test_file_size_and_tmp_size_limits(client: Client) -> None:
    big = await _run(client, "open('/tmp/big', 'wb').write(bytes(5 << 20))")
    many = await _run(client, "for i in range(4):\n    open(f'/tmp/f{i}', 'wb').write(bytes(3 << 20))")
    assert big["status"] == "error" and "File too large" in big["stderr"]
    assert many["status"] == "error" and "No space left" in many["stderr"]
    await _still_answers(client)


@pytest.mark.anyio
async def test_process_count_is_limited(client: Client) -> None:
    code = """
import os, time
started = 0
try:
    for _ in range(200):
        if os.fork() == 0:
            time.sleep(30)
            os._exit(0)
        started += 1
except OSError as exc:
    print("stopped", started, exc.errno)
"""
    seen = await _run(client, code)
    words = seen["stdout"].split()
    assert words[0] == "stopped" and words[2] == "11"  # EAGAIN
    assert int(words[1]) < LIMITS.max_processes
    assert seen["status"] == "ok"  # the sleeping children went with the sandbox
    await _still_answers(client)


@pytest.mark.anyio
async def test_fork_bomb_is_contained(client: Client) -> None:
    bomb = "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass"
    seen = await _run(client, bomb)
    assert seen["status"] in ("timeout", "killed"), seen["message"]
    await _still_answers(client)


@pytest.mark.anyio
async def test_ten_gigabytes_do_not_fit(client: Client) -> None:
    seen = await _run(client, "block = bytearray(10 * 1024**3)\nprint(len(block))")
    assert seen["status"] == "error" and "MemoryError" in seen["stderr"]
    await _still_answers(client)


@pytest.mark.anyio
async def test_endless_loop_is_stopped(client: Client) -> None:
    seen = await _run(client, "while True:\n    pass")
    assert seen["status"] in ("timeout", "killed"), seen["message"]
    assert seen["timed_out"] or seen["signal"] == "SIGXCPU"
    await _still_answers(client)


@pytest.mark.anyio
async def test_printing_100_mb_is_cut(client: Client) -> None:
    seen = await _run(
        client, "import sys\nchunk = 'x' * 1_000_000\nfor _ in range(100):\n    sys.stdout.write(chunk)"
    )
    assert seen["status"] == "output_limit" and seen["output_truncated"] is True
    assert 0 < len(seen["stdout"]) + len(seen["stderr"]) <= LIMITS.max_output_bytes
    await _still_answers(client)


@pytest.mark.anyio
async def test_killing_the_parent_and_everyone_hurts_nobody_outside(client: Client) -> None:
    bystander = subprocess.Popen(["sleep", "60"])  # a host process the sandbox must not reach
    try:
        parent = await _run(
            client, "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\nprint('still here')"
        )
        everyone = await _run(client, "import os, signal\nos.kill(-1, signal.SIGKILL)\nprint('still here')")
        shell = await _run(
            client, "import subprocess\nsubprocess.run('kill -9 -1', shell=True)\nprint('after')"
        )
        assert bystander.poll() is None
    finally:
        bystander.kill()
        bystander.wait()
    for seen in (parent, everyone, shell):
        assert seen["status"] in ("ok", "error", "killed"), seen["message"]
    assert shell["signal"] == "SIGKILL"  # the shell's kill -1 took down its own parent, the program
    await _still_answers(client)


# --------------------------------------------------------------------------- without a sandbox


def test_missing_bwrap_refuses_to_start(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "servers.python"],
        input=b"",
        capture_output=True,
        cwd=REPO_ROOT,
        env={**os.environ, "PATH": str(tmp_path)},
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert b"apt-get install bubblewrap" in done.stderr
    assert done.stdout == b""


def test_bwrap_that_cannot_sandbox_refuses_to_start(tmp_path: Path) -> None:
    fake = tmp_path / "bwrap"
    fake.write_text("#!/bin/sh\necho 'bwrap: No permissions to create new namespace' >&2\nexit 1\n")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    with pytest.raises(SandboxUnavailable, match="No permissions to create new namespace"):
        make_server(bwrap=str(fake))
    with pytest.raises(SandboxUnavailable, match="cannot build a sandbox"):
        make_server(bwrap=str(tmp_path / "no-such-bwrap"))


# --------------------------------------------------------------------------- over stdio


@pytest.mark.anyio
async def test_python_over_stdio_through_the_hub() -> None:
    config = {
        "mcpServers": {
            "python": {
                "command": "python",
                "args": ["-m", "servers.python", "--timeout", "4"],
                "cwd": str(REPO_ROOT),
            }
        }
    }
    with anyio.fail_after(90):
        async with ToolHub(load_config(config), call_timeout=30) as hub:
            first = await hub.call("run_python", {"code": "print(sum(range(10)))"})
            attack = await hub.call(
                "run_python", {"code": "import subprocess; subprocess.run('kill -9 -1', shell=True)"}
            )
            loop = await hub.call("run_python", {"code": "while True: pass"})
            last = await hub.call("run_python", {"code": "print('still up')"})
    assert first.structured is not None and first.structured["stdout"] == "45\n"
    assert not attack.is_error and attack.structured is not None
    assert loop.structured is not None and loop.structured["status"] in ("timeout", "killed")
    assert last.structured is not None and last.structured["stdout"] == "still up\n"
    assert hub.restarts == {}
