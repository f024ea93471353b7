"""The python server: code runs in a bubblewrap sandbox, and every attempt to get out comes back as data.

Each attack is followed by an ordinary call, which must still work: the server stays up and answers.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
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
from servers.python import Limits, SandboxUnavailable, find_cgroups, make_server

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
import re
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


# --------------------------------------------------------------------------- kernel state, namespaces


# Helpers every attack program below starts with: raw system calls through ctypes.
_SYSCALLS = r"""
import ctypes, errno, json, os, platform
NR = {
    "x86_64": {"add_key": 248, "keyctl": 250, "clone": 56, "unshare": 272},
    "aarch64": {"add_key": 217, "keyctl": 219, "clone": 220, "unshare": 97},
}[platform.machine()]
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
def call(*args):
    ctypes.set_errno(0)
    words = [ctypes.c_long(a) if isinstance(a, int) else a for a in args]
    result = libc.syscall(*words)
    return [result, errno.errorcode.get(ctypes.get_errno(), "?") if result < 0 else "ok"]
USER, SESSION, USER_SESSION = -4, -3, -5
KEYCTL_JOIN, KEYCTL_SEARCH, KEYCTL_READ = 1, 10, 11
"""


def _keyrings_here() -> None:
    if not Path("/proc/keys").exists():
        pytest.skip("this kernel has no keyrings (no /proc/keys)")


@pytest.mark.anyio
async def test_a_key_stored_by_one_run_is_not_found_by_the_next() -> None:
    _keyrings_here()
    # One run at a time, so a design that hands every run the same user id would show it here.
    store = (
        _SYSCALLS
        + """
stored = {}
for ring in (USER, SESSION, USER_SESSION):
    stored[ring] = call(NR["add_key"], b"user", b"cross-run-key", b"left behind", 11, ring)
print(json.dumps(stored))
"""
    )
    async with Client(make_server(dataclasses.replace(LIMITS, max_concurrent=1))) as client:
        stored = json.loads((await _run(client, store))["stdout"])
        serials = [result for result, _ in stored.values() if result > 0]
        find = (
            _SYSCALLS
            + f"""
found = {{}}
for ring in (USER, SESSION, USER_SESSION):
    found[ring] = call(NR["keyctl"], KEYCTL_SEARCH, ring, b"user", b"cross-run-key", 0)
buffer = ctypes.create_string_buffer(64)
for serial in {serials!r}:
    found[serial] = call(NR["keyctl"], KEYCTL_READ, serial, buffer, 64)
print(json.dumps(found))
"""
        )
        found = json.loads((await _run(client, find))["stdout"])
        await _still_answers(client)
    assert all(result < 0 for result, _ in found.values()), found  # nothing of the first run is there
    assert {reason for _, reason in stored.values()} == {"EPERM"}  # kernel keyrings are closed to runs


@pytest.mark.anyio
async def test_the_servers_own_session_keyring_is_out_of_reach() -> None:
    _keyrings_here()
    # The server process joins a session keyring of its own and keeps a secret in it, as a login
    # session would; a program it runs must not find it.
    server = (
        _SYSCALLS
        + """
assert call(NR["keyctl"], KEYCTL_JOIN, b"agent-sandbox-test")[0] > 0
assert call(NR["add_key"], b"user", b"host-secret", b"s3cret-host-key", 15, SESSION)[0] > 0
from servers.python import main
main(["--timeout", "4"])
"""
    )
    attack = (
        _SYSCALLS
        + """
found = call(NR["keyctl"], KEYCTL_SEARCH, SESSION, b"user", b"host-secret", 0)
buffer = ctypes.create_string_buffer(64)
read = call(NR["keyctl"], KEYCTL_READ, found[0], buffer, 64) if found[0] > 0 else found
print(json.dumps({"found": found, "read": read, "text": buffer.value.decode(errors="replace")}))
"""
    )
    config = {"mcpServers": {"python": {"command": "python", "args": ["-c", server], "cwd": str(REPO_ROOT)}}}
    with anyio.fail_after(90):
        async with ToolHub(load_config(config), call_timeout=30) as hub:
            result = await hub.call("run_python", {"code": attack})
    assert result.structured is not None, result.text
    seen = json.loads(result.structured["stdout"])
    assert seen["found"][0] < 0 and "s3cret-host-key" not in seen["text"], seen


@pytest.mark.anyio
@pytest.mark.skipif(os.geteuid() != 0, reason="run user ids are chosen only when the server is root")
async def test_run_user_ids_are_not_reused_across_runs_or_servers() -> None:
    uid = "import os; print(os.getuid())"
    seen: list[int] = []
    async with Client(make_server(LIMITS)) as first, Client(make_server(LIMITS)) as second:
        for _ in range(3):
            seen.append(int((await _run(first, uid))["stdout"]))
            seen.append(int((await _run(second, uid))["stdout"]))
    config = {
        "mcpServers": {
            "python": {"command": "python", "args": ["-m", "servers.python"], "cwd": str(REPO_ROOT)}
        }
    }
    with anyio.fail_after(90):
        async with ToolHub(load_config(config), call_timeout=30) as hub:
            for _ in range(3):
                result = await hub.call("run_python", {"code": uid})
                assert result.structured is not None, result.text
                seen.append(int(result.structured["stdout"]))
    assert len(set(seen)) == len(seen) == 9, seen  # two servers in one process, one in another
    assert min(seen) >= 2_000_000_000


@pytest.mark.anyio
async def test_no_new_user_namespace_inside(client: Client) -> None:
    code = (
        _SYSCALLS
        + r"""
import mmap, shutil, subprocess, threading
CLONE_NEWUSER, CLONE_NEWNS, SIGCHLD = 0x10000000, 0x20000, 17
def child_returns(result):
    if result[0] == 0:
        os._exit(0)  # a child that should never have been made
    return result[1] if result[0] < 0 else "made"
seen = {
    "unshare": call(NR["unshare"], CLONE_NEWUSER | CLONE_NEWNS)[1],
    "clone": child_returns(call(NR["clone"], CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0)),
}
clone_args = (ctypes.c_uint64 * 11)(CLONE_NEWUSER, 0, 0, 0, SIGCHLD)
seen["clone3"] = child_returns(call(435, clone_args, ctypes.sizeof(clone_args)))
mounted = libc.mount(b"none", b"/tmp", b"tmpfs", 0, None)
seen["mount_tmpfs"] = "ok" if mounted == 0 else errno.errorcode[ctypes.get_errno()]
if shutil.which("unshare"):
    seen["unshare_command"] = subprocess.run(["unshare", "-Ur", "true"], capture_output=True).returncode
if platform.machine() == "x86_64":
    seen["x32_unshare"] = call(0x40000000 | 272, CLONE_NEWUSER)[1]
    # The i386 entry point, int 0x80, from a forked child (where i386 is off it crashes only the child):
    # push rbx; mov eax, 310 (unshare); mov ebx, CLONE_NEWUSER; int 0x80; pop rbx; ret
    page = mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    page.write(bytes.fromhex("53b836010000bb00000010cd805bc3"))
    entry = ctypes.CFUNCTYPE(ctypes.c_int)(ctypes.addressof(ctypes.c_char.from_buffer(page)))
    pid = os.fork()
    if pid == 0:
        os._exit(0 if entry() == 0 else 1)
    seen["i386_unshare"] = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
# What must still work: fork, threads (clone3 falls back to clone), subprocesses.
pid = os.fork()
if pid == 0:
    os._exit(7)
seen["fork"] = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
box = []
thread = threading.Thread(target=box.append, args=["thread"])
thread.start(); thread.join()
seen["thread"] = box
seen["subprocess"] = subprocess.run(["echo", "child"], capture_output=True, text=True).stdout
print(json.dumps(seen))
"""
    )
    seen = json.loads((await _run(client, code))["stdout"])
    assert (seen["unshare"], seen["clone"], seen["clone3"]) == ("EPERM", "EPERM", "ENOSYS"), seen
    assert seen["mount_tmpfs"] == "EPERM"
    assert seen.get("unshare_command", 1) != 0
    assert seen.get("x32_unshare", "EPERM") in ("EPERM", "ENOSYS")
    assert seen.get("i386_unshare", 1) != 0  # 1: refused; a negative number: no i386 entry at all
    assert (seen["fork"], seen["thread"], seen["subprocess"]) == (7, ["thread"], "child\n")
    await _still_answers(client)


# --------------------------------------------------------------------------- memory as a whole

_CHILDREN = """
import os, sys, time
size = {size_mb} << 20
children = []
for _ in range(3):
    pid = os.fork()
    if pid == 0:
        block = bytearray(b"x") * size  # written, so the pages are really held
        os.write(1, b"child held {size_mb}\\n")  # one write below PIPE_BUF: lines never interleave
        time.sleep(2)
        os._exit(0)
    children.append(pid)
codes = [os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) for pid in children]
print("children ended", codes)
"""

_MEMFDS = """
import os
import re
held, files = 0, []
chunk = bytes(1 << 20)
try:
    while held < {goal_mb}:
        fd = os.memfd_create("hold")
        for _ in range({file_mb}):
            os.write(fd, chunk)
        files.append(fd)
        held += {file_mb}
        print("memfds held", held, flush=True)
except OSError as exc:
    print("stopped", exc)
"""


def _cgroup_folder() -> str | None:
    """A cgroup v2 folder for the bound test (SANDBOX_TEST_CGROUP), else the server's own choice."""
    return os.environ.get("SANDBOX_TEST_CGROUP")


def _held(stdout: str, label: str) -> int:
    return sum(int(size) for size in re.findall(re.escape(label) + r" (\d+)", stdout))


@pytest.mark.anyio
async def test_memory_is_bounded_for_the_sandbox_as_a_whole() -> None:
    cgroups, note = find_cgroups(_cgroup_folder())
    if cgroups is None:
        pytest.skip(f"no cgroup bounds runs here ({note}); set SANDBOX_TEST_CGROUP to a cgroup v2 folder")
    limits = LIMITS
    async with Client(make_server(limits, cgroup=cgroups.folder)) as client:
        (tool,) = (await client.list_tools()).tools
        children = await _run(client, _CHILDREN.format(size_mb=limits.memory_mb * 45 // 100))
        memfds = await _run(client, _MEMFDS.format(goal_mb=limits.memory_mb * 3 // 2, file_mb=limits.file_mb))
        await _still_answers(client)
    assert f"{limits.memory_mb} MB memory for the whole sandbox" in (tool.description or "")
    assert children["status"] == "killed" and "memory limit" in children["message"], children
    assert memfds["status"] == "killed" or _held(memfds["stdout"], "memfds held") <= limits.memory_mb


@pytest.mark.anyio
async def test_without_a_cgroup_memory_is_bounded_per_process_only_and_the_tool_says_so() -> None:
    cgroups, note = find_cgroups(_cgroup_folder())
    if cgroups is not None:
        pytest.skip(f"runs are bounded as a whole here ({note})")
    limits = LIMITS
    async with Client(make_server(limits)) as client:
        (tool,) = (await client.list_tools()).tools
        children = await _run(client, _CHILDREN.format(size_mb=limits.memory_mb * 45 // 100))
        memfds = await _run(client, _MEMFDS.format(goal_mb=limits.memory_mb * 3 // 2, file_mb=limits.file_mb))
        one = await _run(client, f"block = bytearray({limits.memory_mb} << 20)")
        await _still_answers(client)
    description = tool.description or ""
    assert f"{limits.memory_mb} MB memory per process" in description and "not bounded" in description
    # What the description admits: together the children hold more than the limit, and so do memfds ...
    assert _held(children["stdout"], "child held") > limits.memory_mb, children
    assert _held(memfds["stdout"], "memfds held") > limits.memory_mb, memfds
    # ... while one process still cannot pass it.
    assert one["status"] == "error" and "MemoryError" in one["stderr"]


# --------------------------------------------------------------------------- the program's own words


@pytest.mark.anyio
async def test_a_program_that_talks_like_bwrap_is_still_the_program(client: Client) -> None:
    seen = await _run(
        client, "import sys\nsys.stderr.write('bwrap: Creating new namespace failed: fake\\n')\nsys.exit(1)"
    )
    assert (seen["status"], seen["exit_code"]) == ("error", 1)
    assert seen["stderr"] == "bwrap: Creating new namespace failed: fake\n"
    assert seen["message"] == "exited with code 1: bwrap: Creating new namespace failed: fake"


@pytest.mark.anyio
async def test_a_sandbox_that_fails_to_start_later_is_an_error_with_bwraps_words(tmp_path: Path) -> None:
    # A bwrap that works for the server's start-up check, then fails as a real one does when the
    # kernel refuses a namespace.
    real = shutil.which("bwrap")
    assert real is not None
    calls = tmp_path / "calls"
    flaky = tmp_path / "bwrap"
    flaky.write_text(
        "#!/bin/sh\n"
        f'if [ ! -e {calls} ]; then touch {calls}; exec {real} "$@"; fi\n'
        "echo 'bwrap: Creating new namespace failed: No space left on device' >&2\nexit 1\n"
    )
    flaky.chmod(flaky.stat().st_mode | stat.S_IXUSR)
    async with Client(make_server(LIMITS, bwrap=str(flaky))) as client:
        result = await client.call_tool("run_python", {"code": "print('never runs')"})
    assert result.is_error is True
    assert _text(result).endswith(
        "The sandbox failed to start: bwrap: Creating new namespace failed: No space left on device"
    )


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
