"""Python: runs a model's code in a bubblewrap sandbox, with resource limits, and returns what happened.

Each call runs one program in a fresh sandbox (``bwrap``) that has:

- no network (a network namespace of its own: only an unconnected loopback), its own PID, IPC, UTS
  and cgroup namespaces, and a new terminal session;
- a read-only view of the system (``/usr``, ``/bin``, ``/lib*``) and of the Python interpreter's prefix,
  and nothing else of the host: no ``/etc``, no home, no ``/work``, not the host's ``/tmp``;
- a private writable ``/tmp`` (a tmpfs of ``tmp_mb``), which is the working folder and vanishes
  after the run;
- a cleared environment (``PATH``, ``HOME=/tmp``, ``LANG``), no capabilities and ``no_new_privs``;
- a seccomp filter (:func:`seccomp_filter`): no kernel keyrings (``add_key``, ``keyctl``,
  ``request_key``), which no namespace separates, and no new user namespaces, which would hand the
  program every capability inside them (mounts included);
- limits set inside the sandbox before the program starts: CPU seconds (``RLIMIT_CPU``), address space
  per process (``RLIMIT_AS``), file size (``RLIMIT_FSIZE``), process count (``RLIMIT_NPROC``), no core
  dumps;
- where this server has a cgroup (v2) folder with the ``memory`` and ``pids`` controllers
  (:class:`RunCgroups`), a cgroup of its own per run, so that memory is bounded for the sandbox as a
  whole (all its processes, its ``/tmp`` and its memfds together), not only per process.

``RLIMIT_NPROC`` counts the processes of a user id, and the kernel never enforces it for root. When the
server runs as root, bwrap runs privileged (no user namespace) and a small bootstrap inside the sandbox
sets the limits, then drops to an unprivileged user id before it executes the program, so the limit
holds and counts only that run's processes. The ids come from a block owned by the server's pid, so no
two live servers share one, and a run takes the id used least recently. When the server runs as a
normal user, bwrap makes a user namespace and the same bootstrap sets the limits without changing user.

Outside the sandbox the server adds a wall-clock timeout (the whole process group is killed), an
output cap (stdout and stderr are read as they come; past the cap the program is killed), and a bound
on concurrent runs. The bootstrap tells the server, through a pipe of its own, that the program is
about to start, so a failure of bwrap to build the sandbox is told apart from a program that fails
(whatever the program prints). Whatever the program does — crash, loop, fork, allocate, flood, kill its
parent — comes back as a :class:`RunResult`; the only errors are input the server refuses and a sandbox
that could not be built.

Not covered: the kernel is shared (the seccomp filter closes only the calls named above; there is no
VM); without a cgroup, memory is bounded per process only, so the processes of one run together, and
memory held outside an address space (memfds, pipes, SysV shared memory), may exceed ``memory_mb``; the
standard library is all there is (no third-party packages); nothing persists between calls.

If ``bwrap`` is missing, or cannot build a sandbox here, the server refuses to start and says how to
fix it; it never runs code unsandboxed. Run it with ``python -m servers.python [--timeout S] ...``.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import errno
import json
import os
import platform
import selectors
import shutil
import signal
import struct
import subprocess
import sys
import threading
import time
import uuid
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
MAX_CONCURRENT = 16
# Unprivileged user ids for runs when the server is root: far above any real account. Each server owns
# a block of ids at its pid; Linux pids stay below 2**22 (PID_MAX_LIMIT), so the highest block ends at
# 2e9 + 2**22 * 512 < 2**32 - 1, the largest valid id.
_UID_BASE = 2_000_000_000
_UIDS_PER_SERVER = 512
_PID_LIMIT = 1 << 22


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


Status = Literal["ok", "error", "killed", "timeout", "output_limit"]


class RunResult(BaseModel):
    """What a program did. Failures of the program are results, not errors."""

    status: Status = Field(
        description="ok: exit code 0; error: another exit code; killed: ended by a signal (e.g. the CPU "
        "limit), or a process of it was killed at the sandbox's memory limit; timeout: stopped at the "
        "wall-clock limit; output_limit: stopped for printing too much."
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


# --------------------------------------------------------------------------- the seccomp filter

# Classic BPF as bwrap's --seccomp reads it: struct sock_filter {u16 code; u8 jt; u8 jf; u32 k}.
_LD_ABS, _JEQ, _JGE, _JSET, _RET = 0x20, 0x15, 0x35, 0x45, 0x06
_RET_ALLOW, _RET_ERRNO = 0x7FFF_0000, 0x0005_0000
# Offsets in struct seccomp_data: the call's number, the ABI, then the arguments (64 bits each; both
# architectures below are little-endian, so the low half of the first argument is at 16).
_NR, _ARCH, _ARG0_LOW = 0, 4, 16
CLONE_NEWUSER = 0x1000_0000


@dataclass(frozen=True)
class _Abi:
    """An architecture's audit id and the numbers of the system calls the filter looks at."""

    audit_arch: int
    add_key: int
    request_key: int
    keyctl: int
    unshare: int
    clone: int
    clone3: int
    foreign_from: int | None = None  # numbers at or above this belong to another ABI (x32 on x86_64)


# From the kernel's tables: arch/x86/entry/syscalls/syscall_64.tbl and include/uapi/asm-generic/unistd.h.
_ABIS = {
    "x86_64": _Abi(0xC000_003E, 248, 249, 250, unshare=272, clone=56, clone3=435, foreign_from=0x4000_0000),
    "aarch64": _Abi(0xC000_00B7, 217, 218, 219, unshare=97, clone=220, clone3=435),
}

_Jump = int | str
_Line = tuple[int, _Jump, _Jump, int] | str  # an instruction, or a label for the next one


def _assemble(lines: list[_Line]) -> bytes:
    """Pack BPF instructions; a jump to a label becomes the offset from the next instruction."""
    labels: dict[str, int] = {}
    code: list[tuple[int, _Jump, _Jump, int]] = []
    for line in lines:
        if isinstance(line, str):
            labels[line] = len(code)
        else:
            code.append(line)

    def offset(target: _Jump, index: int) -> int:
        return target if isinstance(target, int) else labels[target] - index - 1

    return b"".join(
        struct.pack("<HBBI", op, offset(jt, i), offset(jf, i), k) for i, (op, jt, jf, k) in enumerate(code)
    )


def seccomp_filter(machine: str | None = None) -> bytes:
    """The filter every program runs under: no kernel keyrings, no new user namespaces.

    Keyrings are kernel-wide (a key stored by one run could be found by a later one, and a program
    could reach the server's session keyring), so ``add_key``, ``request_key`` and ``keyctl`` fail with
    EPERM. ``unshare`` and ``clone`` fail with EPERM when asked for ``CLONE_NEWUSER``. ``clone3`` passes
    its flags in memory, where a filter cannot read them, so it fails with ENOSYS and the C library
    falls back to ``clone``. Calls through another ABI (i386 or x32 on x86_64) fail with EPERM.
    Raises :class:`SandboxUnavailable` on an architecture this filter has no numbers for.
    """
    name = machine or platform.machine()
    abi = _ABIS.get(name)
    if abi is None:
        raise SandboxUnavailable(
            f"no seccomp filter is defined for this architecture ({name}; known: {', '.join(_ABIS)}), "
            "and the python server never runs code without it."
        )
    eperm, enosys = _RET_ERRNO | errno.EPERM, _RET_ERRNO | errno.ENOSYS
    foreign: list[_Line] = [(_JGE, "deny", 0, abi.foreign_from)] if abi.foreign_from else []
    return _assemble(
        [
            (_LD_ABS, 0, 0, _ARCH),
            (_JEQ, 1, 0, abi.audit_arch),
            (_RET, 0, 0, eperm),
            (_LD_ABS, 0, 0, _NR),
            *foreign,
            *((_JEQ, "deny", 0, number) for number in (abi.add_key, abi.request_key, abi.keyctl)),
            (_JEQ, "nosys", 0, abi.clone3),
            (_JEQ, "flags", 0, abi.unshare),
            (_JEQ, "flags", 0, abi.clone),
            (_RET, 0, 0, _RET_ALLOW),
            "flags",
            (_LD_ABS, 0, 0, _ARG0_LOW),
            (_JSET, "deny", 0, CLONE_NEWUSER),
            (_RET, 0, 0, _RET_ALLOW),
            "deny",
            (_RET, 0, 0, eperm),
            "nosys",
            (_RET, 0, 0, enosys),
        ]
    )


# --------------------------------------------------------------------------- cgroups


class CgroupUnavailable(Exception):
    """A cgroup folder cannot bound runs here; the message says why."""


_CONTROLLERS = ("memory", "pids")


def _read(folder: str, name: str) -> str:
    with open(os.path.join(folder, name), encoding="ascii") as handle:
        return handle.read()


def _write(folder: str, name: str, value: str) -> None:
    with open(os.path.join(folder, name), "w", encoding="ascii") as handle:
        handle.write(value)


class RunCgroups:
    """A cgroup (v2) per run, made under a folder the server may write, bounding the run as a whole.

    Each run's cgroup gets ``memory.max`` (every process of the run, its ``/tmp`` and its memfds
    together), ``memory.swap.max`` 0 and ``pids.max``. The bootstrap moves itself into it through a
    ``cgroup.procs`` file the server opened, before the program starts, so every process of the run is
    inside. Afterwards what is left in it is killed (``cgroup.kill``) and the cgroup removed.
    """

    def __init__(self, folder: str) -> None:
        """Use ``folder``; raises :class:`CgroupUnavailable` when runs cannot be bounded there."""
        self.folder = folder
        try:
            offered = _read(folder, "cgroup.controllers").split()
            missing = [name for name in _CONTROLLERS if name not in offered]
            if missing:
                raise CgroupUnavailable(f"{folder} offers no {' or '.join(missing)} controller")
            enabled = _read(folder, "cgroup.subtree_control").split()
            wanted = " ".join(f"+{name}" for name in _CONTROLLERS if name not in enabled)
            if wanted:  # fails (EBUSY) when the folder itself holds processes
                _write(folder, "cgroup.subtree_control", wanted)
            self.remove(self.create(64, 8))  # a trial run's cgroup: can one be made here at all?
        except OSError as exc:
            raise CgroupUnavailable(f"{folder}: {exc.strerror or exc}") from exc

    def create(self, memory_mb: int, pids: int) -> str:
        """A fresh cgroup for one run; OSError when it cannot be made."""
        path = os.path.join(self.folder, f"agent-sandbox-run-{uuid.uuid4().hex[:16]}")
        os.mkdir(path)
        try:
            _write(path, "memory.max", str(memory_mb << 20))
            if os.path.exists(os.path.join(path, "memory.swap.max")):  # absent without swap accounting
                _write(path, "memory.swap.max", "0")
            _write(path, "pids.max", str(pids))
        except OSError:
            self.remove(path)
            raise
        return path

    @staticmethod
    def oom_kills(path: str) -> int:
        """How many processes the kernel killed in this cgroup for passing ``memory.max``."""
        with contextlib.suppress(OSError):
            for line in _read(path, "memory.events").splitlines():
                key, _, value = line.partition(" ")
                if key == "oom_kill":
                    return int(value)
        return 0

    @staticmethod
    def remove(path: str) -> None:
        """Kill whatever is left in the cgroup and remove it (retried while its processes exit)."""
        with contextlib.suppress(OSError):
            _write(path, "cgroup.kill", "1")  # Linux 5.14 and later
        for _ in range(100):
            try:
                os.rmdir(path)
                return
            except FileNotFoundError:
                return
            except OSError as exc:
                if exc.errno != errno.EBUSY:
                    return
                time.sleep(0.02)


def _own_cgroup() -> str | None:
    """The folder of this process's cgroup in the cgroup v2 hierarchy, or None when there is none."""
    try:
        with open("/proc/self/cgroup", encoding="utf-8") as handle:
            path = next((line[3:].strip() for line in handle if line.startswith("0::")), None)
        with open("/proc/self/mountinfo", encoding="utf-8") as handle:
            mounts = [line.split(" - ", 1) for line in handle]
    except OSError:
        return None
    for fields, kind in ((m[0].split(), m[1].split()) for m in mounts if len(m) == 2):
        if path is not None and kind[0] == "cgroup2" and fields[3] == "/":
            mount_point = fields[4].encode().decode("unicode_escape")  # \\040 and friends
            folder = os.path.normpath(os.path.join(mount_point, path.lstrip("/")))
            return folder if os.path.isdir(folder) else None
    return None


def find_cgroups(folder: str | None = None) -> tuple[RunCgroups | None, str]:
    """The cgroups that bound runs, and a line saying which folder, or why runs are not bounded so.

    A ``folder`` given must work (:class:`SandboxUnavailable` otherwise). Without one the server's own
    cgroup is used, but only where it already hands ``memory`` and ``pids`` to sub-groups (the root of a
    cgroup v2 hierarchy, or a folder delegated that way); it is never reconfigured.
    """
    if folder is not None:
        try:
            return RunCgroups(folder), f"each run in its own cgroup under {folder}"
        except CgroupUnavailable as exc:
            raise SandboxUnavailable(f"the cgroup folder cannot bound runs: {exc}") from exc
    own = _own_cgroup()
    if own is None:
        return None, "no cgroup v2 hierarchy holds this server"
    try:
        enabled = _read(own, "cgroup.subtree_control").split()
    except OSError as exc:
        return None, f"the server's cgroup {own} cannot be read: {exc.strerror}"
    if not all(name in enabled for name in _CONTROLLERS):
        return None, f"the server's cgroup {own} does not hand the memory and pids controllers to sub-groups"
    try:
        return RunCgroups(own), f"each run in its own cgroup under {own}"
    except CgroupUnavailable as exc:
        return None, str(exc)


# --------------------------------------------------------------------------- user ids


class _UserIds:
    """The unprivileged user ids for the runs of a root process's servers: least recently used first.

    The block starts at ``_UID_BASE + pid * _UIDS_PER_SERVER``, so two live server processes never
    share an id, and all the servers of one process draw from one block (:func:`_user_ids`). An id is
    handed out again only after every other id of the block has been.
    """

    def __init__(self, pid: int) -> None:
        first = _UID_BASE + (pid % _PID_LIMIT) * _UIDS_PER_SERVER
        self.pid = pid
        self._free = collections.deque(range(first, first + _UIDS_PER_SERVER))
        self._lock = threading.Lock()

    def take(self) -> int:
        with self._lock:
            if not self._free:
                raise ToolError(
                    f"More than {_UIDS_PER_SERVER} programs are running in this process; try again."
                )
            return self._free.popleft()

    def give(self, uid: int) -> None:
        with self._lock:
            self._free.append(uid)


_USER_IDS: list[_UserIds] = []  # this process's block; made anew in a forked child (another pid)
_USER_IDS_LOCK = threading.Lock()


def _user_ids() -> _UserIds:
    with _USER_IDS_LOCK:
        if not _USER_IDS or _USER_IDS[0].pid != os.getpid():
            _USER_IDS[:] = [_UserIds(os.getpid())]
        return _USER_IDS[0]


# The first program in the sandbox: set the limits, join the run's cgroup, leave root if it is root,
# say "starting" on its own pipe, then become the user's program (exec, so the limits, the cgroup and
# the user id carry over). -I -S: no environment, no site, fast start.
_BOOTSTRAP = """
import json, os, resource, sys
job = json.loads(sys.argv[1])
for name, soft, hard in job["limits"]:
    resource.setrlimit(getattr(resource, name), (soft, hard))
if job["cgroup"] is not None:
    os.write(job["cgroup"], b"0")
    os.close(job["cgroup"])
if job["uid"] is not None:
    os.setgroups([])
    os.setresgid(job["uid"], job["uid"], job["uid"])
    os.setresuid(job["uid"], job["uid"], job["uid"])
os.write(job["ready"], b"1")
os.close(job["ready"])
os.execv(job["python"], [job["python"], "-I", "-u", "-X", "utf8", job["code"]])
"""


def _base_python() -> str:
    """The real interpreter behind ``sys.executable`` (a virtual environment's python is a link to it)."""
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    candidate = os.path.join(sys.base_prefix, "bin", version)
    return os.path.realpath(candidate if os.path.exists(candidate) else sys.executable)


def _under(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def _memfd(name: str, data: bytes) -> int:
    """A memory file holding ``data``, read from its start (how bwrap takes the code and the filter)."""
    fd = os.memfd_create(name, os.MFD_CLOEXEC)
    try:
        os.write(fd, data)
        os.lseek(fd, 0, os.SEEK_SET)
    except OSError:
        os.close(fd)
        raise
    return fd


@dataclass
class _Run:
    """What the server watches while one program runs."""

    process: subprocess.Popen[bytes]
    info: BinaryIO  # bwrap's --info-fd: the host pid of the sandbox's init
    ready: BinaryIO  # the bootstrap's pipe: a byte once the program is about to start
    cgroup: str | None


class Sandbox:
    """Builds the bwrap command line and runs programs in it; :meth:`run` blocks (call it from a thread)."""

    def __init__(self, limits: Limits, bwrap: str | None = None, cgroup: str | None = None) -> None:
        """Raises :class:`SandboxUnavailable` when bwrap is missing, cannot sandbox here, or ``cgroup``
        (a cgroup v2 folder for the runs) cannot bound runs; without ``cgroup`` one is looked for."""
        found = bwrap or shutil.which("bwrap")
        if found is None:
            raise SandboxUnavailable(INSTALL_HINT)
        if not 1 <= limits.max_concurrent <= MAX_CONCURRENT:
            raise ValueError(f"max_concurrent must be 1..{MAX_CONCURRENT}, got {limits.max_concurrent}")
        self.bwrap = found
        self.limits = limits
        self.python = _base_python()
        self.as_root = os.geteuid() == 0
        self.seccomp = seccomp_filter()
        self._uids = _user_ids() if self.as_root else None
        self.cgroups, self.cgroup_note = find_cgroups(cgroup)
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

    def _rlimits(self) -> list[tuple[str, int, int]]:
        limits = self.limits
        return [
            ("RLIMIT_CPU", limits.cpu_s, limits.cpu_s + 1),  # SIGXCPU at the soft limit, SIGKILL 1 s on
            ("RLIMIT_AS", limits.memory_mb << 20, limits.memory_mb << 20),
            ("RLIMIT_FSIZE", limits.file_mb << 20, limits.file_mb << 20),
            ("RLIMIT_NPROC", limits.max_processes, limits.max_processes),
            ("RLIMIT_CORE", 0, 0),
            ("RLIMIT_NOFILE", 256, 256),
        ]

    def command(self, fds: dict[str, int], uid: int | None) -> list[str]:
        """The bwrap command for one run, as ``uid`` when root.

        ``fds`` are passed to bwrap: ``code`` (the program) and ``seccomp`` (the filter) are read by
        bwrap; bwrap writes the host pid of the sandbox's init to ``info`` as JSON; the bootstrap writes
        a byte to ``ready`` just before the program starts, and joins the cgroup of ``cgroup`` (the
        run's ``cgroup.procs``, when there is one).
        """
        job = {
            "limits": self._rlimits(),
            "uid": uid,
            "python": self.python,
            "code": CODE_PATH,
            "ready": fds["ready"],
            "cgroup": fds.get("cgroup"),
        }
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
            *("--info-fd", str(fds["info"])),
            *("--seccomp", str(fds["seccomp"])),
            "--hostname",
            "sandbox",
            "--clearenv",
            *("--setenv", "PATH", "/usr/local/bin:/usr/bin:/bin"),
            *("--setenv", "HOME", "/tmp"),
            *("--setenv", "LANG", "C.UTF-8"),
            *self._system_mounts(),
            *("--proc", "/proc", "--dev", "/dev", "--remount-ro", "/dev"),
            *("--perms", "1777", "--size", str(self.limits.tmp_mb << 20), "--tmpfs", "/tmp"),
            *self._python_mounts(),
            *("--perms", "0444", "--ro-bind-data", str(fds["code"]), CODE_PATH),
            *("--chdir", "/tmp"),
            *(self.python, "-I", "-S", "-c", _BOOTSTRAP, json.dumps(job)),
        ]

    # -- running -------------------------------------------------------------------------------

    def run(self, code: str) -> RunResult:
        """Run ``code`` to the end or to a limit; blocks for at most about ``timeout_s``."""
        uid = self._uids.take() if self._uids else None
        cgroup: str | None = None
        try:
            if self.cgroups is not None:
                try:
                    cgroup = self.cgroups.create(self.limits.memory_mb, self.limits.max_processes)
                except OSError as exc:
                    raise ToolError(f"The sandbox's cgroup could not be made: {exc.strerror or exc}") from exc
            return self._start(code.encode("utf-8", errors="surrogatepass"), uid, cgroup)
        finally:
            if cgroup is not None:
                RunCgroups.remove(cgroup)
            if uid is not None and self._uids is not None:
                self._uids.give(uid)

    def _start(self, code: bytes, uid: int | None, cgroup: str | None) -> RunResult:
        info_read, info_write = os.pipe()
        ready_read, ready_write = os.pipe()
        with open(info_read, "rb") as info, open(ready_read, "rb") as ready:
            fds = {"info": info_write, "ready": ready_write}
            try:
                fds["code"] = _memfd("main.py", code)
                fds["seccomp"] = _memfd("seccomp", self.seccomp)
                if cgroup is not None:
                    fds["cgroup"] = os.open(os.path.join(cgroup, "cgroup.procs"), os.O_WRONLY | os.O_CLOEXEC)
                process = subprocess.Popen(
                    self.command(fds, uid),
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    pass_fds=tuple(fds.values()),
                    start_new_session=True,
                    env={},
                )
            finally:
                for fd in fds.values():  # the children hold their copies; EOF comes when they are done
                    os.close(fd)
            return self._collect(_Run(process, info, ready, cgroup))

    def _collect(self, run: _Run) -> RunResult:
        limits = self.limits
        process = run.process
        deadline = time.monotonic() + limits.timeout_s
        assert process.stdout is not None and process.stderr is not None
        output = {process.stdout: bytearray(), process.stderr: bytearray()}
        side = {run.info: bytearray(), run.ready: bytearray()}
        timed_out = truncated = False
        with selectors.DefaultSelector() as selector:
            for stream in (*output, *side):
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
                    if key.fileobj in side:
                        side[key.fileobj] += chunk
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
            _kill(process, bytes(side[run.info]))
        process.wait()
        process.stdout.close()
        process.stderr.close()
        stdout, stderr = (bytes(b).decode("utf-8", errors="replace") for b in output.values())
        if not side[run.ready] and not (timed_out or truncated):
            # The bootstrap never said "starting": bwrap (or the bootstrap) failed, not the program.
            detail = (stderr.strip().splitlines() or [f"bwrap exited with code {process.returncode}"])[-1]
            raise ToolError(f"The sandbox failed to start: {detail}")
        oom_kills = RunCgroups.oom_kills(run.cgroup) if run.cgroup else 0
        return self._result(process.returncode, stdout, stderr, timed_out, truncated, oom_kills)

    def _result(
        self, code: int, stdout: str, stderr: str, timed_out: bool, truncated: bool, oom_kills: int = 0
    ) -> RunResult:
        limits = self.limits
        exit_code: int | None = code
        signame: str | None = None
        status: Status
        message: str
        # bwrap reports a program ended by signal N as exit code 128 + N (as a shell does).
        with contextlib.suppress(ValueError):
            if code > 128:
                exit_code, signame = None, signal.Signals(code - 128).name
        if truncated:
            status, message = "output_limit", f"stopped: the output passed {limits.max_output_bytes} bytes"
        elif timed_out:
            status, message = "timeout", f"stopped: still running after the {limits.timeout_s:g} s time limit"
        elif oom_kills:
            status = "killed"
            message = (
                f"killed: the sandbox reached its memory limit of {limits.memory_mb} MB "
                f"({oom_kills} process{'es' if oom_kills > 1 else ''} killed)"
            )
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
    its user id goes back to the pool, and RLIMIT_NPROC counts per user id). If the init's pid is not
    known yet, or bwrap does not exit, kill bwrap's process group (--die-with-parent ends the rest).
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


def _describe(limits: Limits, whole: bool) -> str:
    """The tool's description; ``whole``: memory is bounded for the sandbox as a whole (a cgroup)."""
    if whole:
        memory = f"{limits.memory_mb} MB memory for the whole sandbox"
    else:
        memory = (
            f"{limits.memory_mb} MB memory per process (per process only: the sandbox as a whole is not "
            "bounded, so its processes together, and memfds, pipes and shared memory, may hold more)"
        )
    return (
        "Run a Python 3 program (standard library only) in an isolated sandbox and get its stdout, stderr "
        "and exit status. Print what you want to see. No network; no files except a private, empty /tmp "
        f"(the working folder, {limits.tmp_mb} MB, gone after the run). Limits: {limits.timeout_s:g} s wall "
        f"clock, {limits.cpu_s} s CPU, {memory}, {limits.max_processes} processes, "
        f"{limits.max_output_bytes} bytes of output. Each call starts from scratch."
    )


def make_server(
    limits: Limits | None = None, *, bwrap: str | None = None, cgroup: str | None = None
) -> MCPServer:
    """A python server; raises :class:`SandboxUnavailable` when bwrap is missing or cannot sandbox here.

    ``cgroup``: a cgroup v2 folder under which each run gets a cgroup bounding its memory and processes
    as a whole; without it the server's own cgroup is used where it allows that (see
    :func:`find_cgroups`), else memory is bounded per process only, and the tool's description says so.
    """
    limits = limits or Limits()
    sandbox = Sandbox(limits, bwrap, cgroup)
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
    description = _describe(limits, whole=sandbox.cgroups is not None)
    server.tool(description=description, annotations=annotations)(run_python)
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
    parser.add_argument(
        "--cgroup",
        metavar="FOLDER",
        help="a cgroup v2 folder the server may write, holding no processes: each run gets a cgroup "
        "there that bounds its memory and processes as a whole (default: the server's own cgroup where "
        "it allows that, else memory is bounded per process only)",
    )
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
        server = make_server(limits, bwrap=args.bwrap, cgroup=args.cgroup)
    except (SandboxUnavailable, ValueError) as exc:
        parser.exit(2, f"python server: {exc}\n")
    server.run()  # stdio; MCPServer sends its logs to stderr, stdout is the wire


if __name__ == "__main__":
    main()
