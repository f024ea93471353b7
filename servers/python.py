"""Python: runs a model's code in a bubblewrap sandbox, with resource limits, and returns what happened.

Each call runs one program in a fresh sandbox (``bwrap``) that has:

- no network (a network namespace of its own: only an unconnected loopback), its own PID, IPC, UTS
  and cgroup namespaces, and a new terminal session;
- a read-only view of the system (``/usr``, ``/bin``, ``/lib*``) and of the Python interpreter's prefix,
  and nothing else of the host: no ``/etc``, no home, no ``/work``, not the host's ``/tmp``;
- a private writable ``/tmp`` (a tmpfs of ``tmp_mb``), which is the working folder and vanishes
  after the run;
- a cleared environment (``PATH``, ``HOME=/tmp``, ``LANG``), no capabilities and ``no_new_privs``;
- limits set inside the sandbox before the program starts: CPU seconds (``RLIMIT_CPU``), address space
  (``RLIMIT_AS``), file size (``RLIMIT_FSIZE``), process count (``RLIMIT_NPROC``), no core dumps.

``RLIMIT_NPROC`` counts the processes of a user id, and the kernel never enforces it for root. When the
server runs as root, bwrap runs privileged (no user namespace) and a small bootstrap inside the sandbox
sets the limits, then drops to an unprivileged user id of its own (one per concurrent run, derived from
the server's pid) before it executes the program, so the limit holds and counts only that run's
processes. When the server runs as a normal user, bwrap makes a user namespace and the same bootstrap
sets the limits without changing user.

Outside the sandbox the server adds a wall-clock timeout (the whole process group is killed), an
output cap (stdout and stderr are read as they come; past the cap the program is killed), and a bound
on concurrent runs. Whatever the program does — crash, loop, fork, allocate, flood, kill its parent —
comes back as a :class:`RunResult`; the only errors are input the server refuses.

Not covered: the kernel is shared (no seccomp filter, no VM); the standard library is all there is
(no third-party packages); nothing persists between calls.

If ``bwrap`` is missing, or cannot build a sandbox here, the server refuses to start and says how to
fix it; it never runs code unsandboxed. Run it with ``python -m servers.python [--timeout S] ...``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import queue
import selectors
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Annotated, BinaryIO, Literal

import anyio
from mcp.server import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations
from pydantic import BaseModel, Field

INSTALL_HINT = (
    "bubblewrap (bwrap) is not installed, and the python server never runs code without its sandbox. "
    "Install it with `apt-get install bubblewrap` (Debian/Ubuntu) or `dnf install bubblewrap` (Fedora)."
)
CODE_PATH = "/sandbox/main.py"
MAX_CONCURRENT = 16  # run user ids are allotted in blocks of this size
# Unprivileged user ids for runs when the server is root: far above any real account.
_UID_BASE = 2_000_000_000


class SandboxUnavailable(RuntimeError):
    """bwrap is missing or cannot build a sandbox on this machine; the message says what to do."""


@dataclass(frozen=True)
class Limits:
    """What one run may use."""

    timeout_s: float = 10.0  # wall clock, then the whole sandbox is killed
    cpu_s: int = 10  # RLIMIT_CPU: SIGXCPU past it
    memory_mb: int = 512  # RLIMIT_AS: allocations past it raise MemoryError
    file_mb: int = 16  # RLIMIT_FSIZE: largest file the program may write
    tmp_mb: int = 64  # size of the private /tmp
    max_processes: int = 32  # RLIMIT_NPROC: processes and threads of the run
    max_output_bytes: int = 65_536  # stdout and stderr together
    max_concurrent: int = 2  # runs at the same time; more calls wait
    max_code_chars: int = 100_000


class RunResult(BaseModel):
    """What a program did. Failures of the program are results, not errors."""

    status: Literal["ok", "error", "killed", "timeout", "output_limit"] = Field(
        description="ok: exit code 0; error: another exit code; killed: ended by a signal (e.g. the CPU "
        "limit); timeout: stopped at the wall-clock limit; output_limit: stopped for printing too much."
    )
    exit_code: int | None = Field(
        description="The program's exit code, or null when it did not exit by itself."
    )
    signal: str | None = Field(description="The signal that ended it (e.g. 'SIGXCPU'), or null.")
    stdout: str = Field(description="What it printed to stdout (UTF-8; cut at the output limit).")
    stderr: str = Field(description="What it printed to stderr, tracebacks included.")
    timed_out: bool = Field(description="True when the wall-clock limit stopped it.")
    output_truncated: bool = Field(description="True when the output limit stopped it.")
    message: str = Field(description="One line saying what happened.")


# The first program in the sandbox: set the limits, leave root if it is root, then become the user's
# program (exec, so the limits and the user id carry over). -I -S: no environment, no site, fast start.
_BOOTSTRAP = """
import json, os, resource, sys
job = json.loads(sys.argv[1])
for name, soft, hard in job["limits"]:
    resource.setrlimit(getattr(resource, name), (soft, hard))
if job["uid"] is not None:
    os.setgroups([])
    os.setresgid(job["uid"], job["uid"], job["uid"])
    os.setresuid(job["uid"], job["uid"], job["uid"])
os.execv(job["python"], [job["python"], "-I", "-u", "-X", "utf8", job["code"]])
"""


def _base_python() -> str:
    """The real interpreter behind ``sys.executable`` (a virtual environment's python is a link to it)."""
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    candidate = os.path.join(sys.base_prefix, "bin", version)
    return os.path.realpath(candidate if os.path.exists(candidate) else sys.executable)


def _under(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")


class Sandbox:
    """Builds the bwrap command line and runs programs in it; :meth:`run` blocks (call it from a thread)."""

    def __init__(self, limits: Limits, bwrap: str | None = None) -> None:
        found = bwrap or shutil.which("bwrap")
        if found is None:
            raise SandboxUnavailable(INSTALL_HINT)
        if not 1 <= limits.max_concurrent <= MAX_CONCURRENT:
            raise ValueError(f"max_concurrent must be 1..{MAX_CONCURRENT}, got {limits.max_concurrent}")
        self.bwrap = found
        self.limits = limits
        self.python = _base_python()
        self.as_root = os.geteuid() == 0
        self._uids: queue.SimpleQueue[int | None] = queue.SimpleQueue()
        first = _UID_BASE + (os.getpid() % 100_000) * MAX_CONCURRENT
        for slot in range(limits.max_concurrent):
            self._uids.put(first + slot if self.as_root else None)
        self._probe()

    def _probe(self) -> None:
        """Run a tiny program once, so a sandbox that cannot start is found now, not on a model's call."""
        try:
            result = self.run("print('ready')")
        except (OSError, ToolError) as exc:
            raise SandboxUnavailable(f"bubblewrap ({self.bwrap}) cannot build a sandbox here: {exc}") from exc
        if result.status != "ok" or result.stdout.strip() != "ready":
            detail = (result.stderr.strip().splitlines() or [result.message])[-1]
            raise SandboxUnavailable(f"bubblewrap ({self.bwrap}) cannot build a sandbox here: {detail}")

    # -- the command line ----------------------------------------------------------------------

    def _system_mounts(self) -> list[str]:
        args = ["--ro-bind", "/usr", "/usr"]
        for name in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
            if os.path.islink(name):
                args += ["--symlink", os.readlink(name), name]
            elif os.path.isdir(name):
                args += ["--ro-bind", name, name]
        return args

    def _python_mounts(self) -> list[str]:
        args: list[str] = []
        prefixes = {os.path.realpath(sys.base_prefix), os.path.realpath(sys.base_exec_prefix)}
        prefixes.add(os.path.dirname(os.path.dirname(self.python)))
        for prefix in sorted(prefixes):
            if _under(prefix, "/usr") or any(_under(prefix, p) for p in prefixes if p != prefix):
                continue
            # bwrap creates missing parent folders as 0700; the unprivileged run must pass through them.
            parent = os.path.dirname(prefix)
            ancestors = []
            while parent not in ("/", ""):
                ancestors.append(parent)
                parent = os.path.dirname(parent)
            for folder in reversed(ancestors):
                args += ["--perms", "0755", "--dir", folder]
            args += ["--ro-bind", prefix, prefix]
        return args

    def command(self, code_fd: int, info_fd: int, uid: int | None) -> list[str]:
        """The bwrap command that runs the program readable on ``code_fd``, as ``uid`` when root.

        bwrap writes the host pid of the sandbox's init process to ``info_fd`` as JSON.
        """
        limits = self.limits
        rlimits = [
            (
                "RLIMIT_CPU",
                limits.cpu_s,
                limits.cpu_s + 1,
            ),  # SIGXCPU at the soft limit, SIGKILL one second on
            ("RLIMIT_AS", limits.memory_mb << 20, limits.memory_mb << 20),
            ("RLIMIT_FSIZE", limits.file_mb << 20, limits.file_mb << 20),
            ("RLIMIT_NPROC", limits.max_processes, limits.max_processes),
            ("RLIMIT_CORE", 0, 0),
            ("RLIMIT_NOFILE", 256, 256),
        ]
        job = {"limits": rlimits, "uid": uid, "python": self.python, "code": CODE_PATH}
        namespaces = [
            "--unshare-pid",
            "--unshare-net",
            "--unshare-ipc",
            "--unshare-uts",
            "--unshare-cgroup-try",
        ]
        if self.as_root:
            # No user namespace: the bootstrap needs real setuid to a non-root id for RLIMIT_NPROC to hold.
            privileges = ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
        else:
            privileges = ["--unshare-user"]
        return [
            self.bwrap,
            *namespaces,
            *privileges,
            "--die-with-parent",
            "--new-session",
            *("--info-fd", str(info_fd)),
            "--hostname",
            "sandbox",
            "--clearenv",
            *("--setenv", "PATH", "/usr/local/bin:/usr/bin:/bin"),
            *("--setenv", "HOME", "/tmp"),
            *("--setenv", "LANG", "C.UTF-8"),
            *self._system_mounts(),
            *("--proc", "/proc", "--dev", "/dev", "--remount-ro", "/dev"),
            *("--perms", "1777", "--size", str(limits.tmp_mb << 20), "--tmpfs", "/tmp"),
            *self._python_mounts(),
            *("--perms", "0444", "--ro-bind-data", str(code_fd), CODE_PATH),
            *("--chdir", "/tmp"),
            *(self.python, "-I", "-S", "-c", _BOOTSTRAP, json.dumps(job)),
        ]

    # -- running -------------------------------------------------------------------------------

    def run(self, code: str) -> RunResult:
        """Run ``code`` to the end or to a limit; blocks for at most about ``timeout_s``."""
        uid = self._uids.get()
        try:
            info_read, info_write = os.pipe()
            with open(info_read, "rb") as info:
                code_fd = os.memfd_create("main.py", os.MFD_CLOEXEC)
                try:
                    os.write(code_fd, code.encode("utf-8", errors="surrogatepass"))
                    os.lseek(code_fd, 0, os.SEEK_SET)
                    process = subprocess.Popen(
                        self.command(code_fd, info_write, uid),
                        stdin=subprocess.DEVNULL,
                        stdout=subprocess.PIPE,
                        stderr=subprocess.PIPE,
                        pass_fds=(code_fd, info_write),
                        start_new_session=True,
                        env={},
                    )
                finally:
                    os.close(code_fd)
                    os.close(info_write)
                return self._collect(process, info)
        finally:
            self._uids.put(uid)

    def _collect(self, process: subprocess.Popen[bytes], info: BinaryIO) -> RunResult:
        limits = self.limits
        deadline = time.monotonic() + limits.timeout_s
        assert process.stdout is not None and process.stderr is not None
        output = {process.stdout: bytearray(), process.stderr: bytearray()}
        status_json = bytearray()
        timed_out = truncated = False
        with selectors.DefaultSelector() as selector:
            for stream in (*output, info):
                selector.register(stream, selectors.EVENT_READ)
            while selector.get_map() and not (timed_out or truncated):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    timed_out = True
                    break
                for key, _ in selector.select(remaining):
                    chunk = os.read(key.fd, 65_536)
                    if not chunk:
                        selector.unregister(key.fileobj)
                        continue
                    if key.fileobj is info:
                        status_json += chunk
                        continue
                    room = limits.max_output_bytes - sum(len(b) for b in output.values())
                    output[key.fileobj] += chunk[:room]  # type: ignore[index]
                    if len(chunk) > room:
                        truncated = True
                        break
        if not (timed_out or truncated):
            try:
                process.wait(max(deadline - time.monotonic(), 0.01))
            except subprocess.TimeoutExpired:
                timed_out = True
        if timed_out or truncated:
            _kill(process, status_json)
        process.wait()
        process.stdout.close()
        process.stderr.close()
        stdout, stderr = (bytes(b).decode("utf-8", errors="replace") for b in output.values())
        return self._result(process.returncode, stdout, stderr, timed_out, truncated)

    def _result(self, code: int, stdout: str, stderr: str, timed_out: bool, truncated: bool) -> RunResult:
        if code == 1 and stderr.startswith("bwrap: ") and not stdout:  # bwrap's own set-up failed
            raise ToolError(f"The sandbox failed to start: {stderr.strip()}")
        limits = self.limits
        exit_code: int | None = code
        signame: str | None = None
        # bwrap reports a program ended by signal N as exit code 128 + N (as a shell does).
        with contextlib.suppress(ValueError):
            if code > 128:
                exit_code, signame = None, signal.Signals(code - 128).name
        if truncated:
            status, message = "output_limit", f"stopped: the output passed {limits.max_output_bytes} bytes"
        elif timed_out:
            status, message = "timeout", f"stopped: still running after the {limits.timeout_s:g} s time limit"
        elif signame == "SIGXCPU":
            status, message = (
                "killed",
                f"killed by SIGXCPU: the CPU time limit of {limits.cpu_s} s was reached",
            )
        elif signame is not None:
            status, message = "killed", f"killed by {signame}"
        elif code == 0:
            status, message = "ok", "exited with code 0"
        else:
            last = (stderr.strip().splitlines() or [""])[-1]
            status, message = "error", f"exited with code {code}" + (f": {last[:200]}" if last else "")
        if timed_out or truncated:
            exit_code, signame = None, None
        return RunResult(
            status=status,
            exit_code=exit_code,
            signal=signame,
            stdout=stdout,
            stderr=stderr,
            timed_out=timed_out,
            output_truncated=truncated,
            message=message,
        )


def _kill(process: subprocess.Popen[bytes], status_json: bytes) -> None:
    """Stop a run: kill the sandbox's init, and the PID namespace goes with it.

    bwrap then reaps it and exits, so when it has exited no process of the run is left (which matters:
    the next run may get the same user id, and RLIMIT_NPROC counts per user id). If the init's pid is
    not known yet, or bwrap does not exit, kill bwrap's process group (--die-with-parent ends the rest).
    """
    try:
        init_pid = int(json.loads(status_json)["child-pid"])
    except (ValueError, KeyError, TypeError):
        init_pid = None
    if init_pid is not None and process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(init_pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(5)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


# --------------------------------------------------------------------------- the server


def _describe(limits: Limits) -> str:
    return (
        "Run a Python 3 program (standard library only) in an isolated sandbox and get its stdout, stderr "
        "and exit status. Print what you want to see. No network; no files except a private, empty /tmp "
        f"(the working folder, {limits.tmp_mb} MB, gone after the run). Limits: {limits.timeout_s:g} s wall "
        f"clock, {limits.cpu_s} s CPU, {limits.memory_mb} MB memory, {limits.max_processes} processes, "
        f"{limits.max_output_bytes} bytes of output. Each call starts from scratch."
    )


def make_server(limits: Limits | None = None, *, bwrap: str | None = None) -> MCPServer:
    """A python server; raises :class:`SandboxUnavailable` when bwrap is missing or cannot sandbox here."""
    limits = limits or Limits()
    sandbox = Sandbox(limits, bwrap)
    gate = anyio.Semaphore(limits.max_concurrent)
    code_type = Annotated[
        str,
        Field(
            description="The program: Python 3 source code.", min_length=1, max_length=limits.max_code_chars
        ),
    ]
    server = MCPServer(
        "python",
        version="1.0.0",
        instructions="Runs Python programs in a sandbox without network or host files.",
    )

    async def run_python(code: str) -> RunResult:
        # A worker thread watches the run, so the event loop keeps serving other calls meanwhile.
        async with gate:
            return await anyio.to_thread.run_sync(sandbox.run, code)

    # The code's schema carries this server's size limit, so the annotation is set here, as an object.
    run_python.__annotations__["code"] = code_type
    annotations = ToolAnnotations(read_only_hint=False, destructive_hint=False, open_world_hint=False)
    server.tool(description=_describe(limits), annotations=annotations)(run_python)
    return server


def main(argv: list[str] | None = None) -> None:
    """``python -m servers.python [--timeout S] ...``: serve over stdio, or refuse to start without bwrap."""
    defaults = Limits()
    parser = argparse.ArgumentParser(prog="python -m servers.python", description=main.__doc__)
    parser.add_argument(
        "--timeout", type=float, default=defaults.timeout_s, help="wall-clock seconds per run"
    )
    parser.add_argument("--cpu-seconds", type=int, default=defaults.cpu_s)
    parser.add_argument("--memory-mb", type=int, default=defaults.memory_mb)
    parser.add_argument("--file-mb", type=int, default=defaults.file_mb)
    parser.add_argument("--tmp-mb", type=int, default=defaults.tmp_mb)
    parser.add_argument("--max-processes", type=int, default=defaults.max_processes)
    parser.add_argument("--max-output-bytes", type=int, default=defaults.max_output_bytes)
    parser.add_argument("--max-concurrent", type=int, default=defaults.max_concurrent)
    parser.add_argument("--bwrap", help="path of the bwrap binary (default: found on PATH)")
    args = parser.parse_args(argv)
    limits = Limits(
        timeout_s=args.timeout,
        cpu_s=args.cpu_seconds,
        memory_mb=args.memory_mb,
        file_mb=args.file_mb,
        tmp_mb=args.tmp_mb,
        max_processes=args.max_processes,
        max_output_bytes=args.max_output_bytes,
        max_concurrent=args.max_concurrent,
    )
    try:
        server = make_server(limits, bwrap=args.bwrap)
    except (SandboxUnavailable, ValueError) as exc:
        parser.exit(2, f"python server: {exc}\n")
    server.run()  # stdio; MCPServer sends its logs to stderr, stdout is the wire


if __name__ == "__main__":
    main()
