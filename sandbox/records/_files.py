"""Task and trace files: the only code that reads or writes them.

A trace file is JSON lines, one :class:`~sandbox.records.Trace` each, every line ending in a
newline. One reader (:func:`iter_traces`) serves every command, with one rule for a last line that
has no newline: when it reads as a trace it is one (a file written by hand may lack the final
newline); when it does not, it is a write cut short (a run killed mid-line) and is left out, never
an error. Any other line that is not a trace stops the read with the file and line number.

Writers: :func:`write_trace` appends one line to an open file; :func:`replacing_trace_file` writes a
whole file beside its target and moves it into place when done; a run folder appends one fsynced
line at a time and, on resume, moves a half-written last line aside (:func:`cut_partial_tail`).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

from pydantic import ValidationError

from sandbox.records._errors import ConfigError, OutputError, SandboxError, TaskFileError, TraceFileError
from sandbox.records._json import JSONBoundError, trace_line, validate_line
from sandbox.records._records import Task, Trace

PARTIAL_SUFFIX = ".partial-"


def describe_error(exc: ValidationError, most: int = 3) -> str:
    """A pydantic error in one line: where and what, for the first few problems."""
    parts = []
    for error in exc.errors(include_url=False)[:most]:
        where = ".".join(str(part) for part in error["loc"])
        parts.append(f"{where}: {error['msg']}" if where else error["msg"])
    more = exc.error_count() - most
    return "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")


# --------------------------------------------------------------------------- text files


def read_text(path: Path, what: str, error: type[SandboxError]) -> str:
    """A UTF-8 text file (a task file, a server config) as a string; a file that cannot be read or
    is not UTF-8 text is ``error`` with one line naming the file and where its text breaks."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise error(f"cannot read {what} {path}: {exc.strerror or exc}") from exc
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        bad = data[exc.start : exc.start + 1]
        raise error(f"{what} {path} is not UTF-8 text (byte {exc.start}, line {line}: {bad!r})") from None


# --------------------------------------------------------------------------- tasks


def read_tasks(path: str | Path) -> list[Task]:
    """Read a JSONL task file, failing with the file and line of the first bad record."""
    path = Path(path)
    lines = read_text(path, "task file", TaskFileError).splitlines()
    tasks: list[Task] = []
    seen: set[str] = set()
    for number, line in enumerate(lines, start=1):
        if not line.strip() or line.lstrip().startswith("//"):
            continue
        try:
            task = Task.model_validate_json(line)
        except ValidationError as exc:
            raise TaskFileError(f"{path}:{number}: not a valid task: {describe_error(exc)}") from exc
        if task.id in seen:
            raise TaskFileError(f"{path}:{number}: duplicate task id {task.id!r}")
        seen.add(task.id)
        tasks.append(task)
    if not tasks:
        raise TaskFileError(f"{path}: no tasks in file")
    return tasks


# --------------------------------------------------------------------------- reading traces


def trace_lines(path: Path) -> Iterator[tuple[int, bytes, bool]]:
    """``(line number, line, complete)`` for each non-blank line; ``complete`` is False only for a
    last line without its newline."""
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise TraceFileError(f"cannot read trace file {path}: {exc.strerror or exc}") from exc
    with handle:
        for number, line in enumerate(handle, start=1):
            if line.strip():
                yield number, line, line.endswith(b"\n")


def iter_traces(path: str | Path) -> Iterator[Trace]:
    """Yield the traces of a JSONL file (see the module doc for a half-written last line), naming
    the file and line of a bad record."""
    path = Path(path)
    for number, line, complete in trace_lines(path):
        try:
            yield validate_line(Trace, line)
        except (ValidationError, JSONBoundError) as exc:
            if not complete:
                return  # a write cut short
            why = describe_error(exc) if isinstance(exc, ValidationError) else str(exc)
            raise TraceFileError(f"{path}:{number}: not a valid trace: {why}") from exc


def read_traces(path: str | Path) -> list[Trace]:
    return list(iter_traces(path))


def partial_tail(path: Path) -> int:
    """How many bytes follow the last newline of ``path`` (a half-written last line), 0 if none."""
    size = path.stat().st_size
    if size == 0:
        return 0
    with path.open("rb") as handle:
        position, block = size, 1 << 16
        while position > 0:
            start = max(0, position - block)
            handle.seek(start)
            chunk = handle.read(position - start)
            newline = chunk.rfind(b"\n")
            if newline != -1:
                return size - (start + newline + 1)
            position = start
    return size


# --------------------------------------------------------------------------- writing traces


def write_trace(handle: Any, trace: Trace) -> None:
    """Append one trace as a JSON line (:func:`~sandbox.records.trace_line`) to an open text file,
    flushed."""
    handle.write(trace_line(trace) + "\n")
    handle.flush()


def check_trace_output(source: Path, out: Path, *, overwrite: bool, made: str) -> None:
    """Refuse an output trace file that is the input, or that holds traces when not ``overwrite``."""
    if out.resolve() == source.resolve():
        raise ConfigError(f"{out} is the input file; write the {made} traces somewhere else")
    if not overwrite and out.exists() and out.stat().st_size > 0:
        raise ConfigError(f"{out} already holds traces; pass --overwrite to replace it, or pick another -o")


@contextlib.contextmanager
def replacing_trace_file(out: Path) -> Iterator[TextIO]:
    """A handle on a temporary file beside ``out``, moved onto ``out`` when the block ends and
    removed when it fails: ``out`` is never left half-written. The file is created the way a plain
    ``open`` creates one, so it gets the same permissions (the umask applies). A write the system
    refuses (a read-only folder, a full disk) is an :class:`OutputError`."""
    name = out.parent / f".{out.name}.{secrets.token_hex(4)}.partial"
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except OSError as exc:
        raise OutputError.of(out, exc) from None
    try:
        with open(descriptor, "w", encoding="utf-8") as handle:
            yield handle
        os.replace(name, out)
    except OSError as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name)
        raise OutputError.of(out, exc, f"{out} was left as it was") from None
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name)
        raise


def cut_partial_tail(path: Path) -> Path | None:
    """Move a half-written last line out of ``path`` into ``path.partial-N`` and truncate ``path`` to
    its last complete line. Returns the side file, or None when the file ends cleanly."""
    tail = partial_tail(path)
    if tail == 0:
        return None
    numbers = [int(p.name.rsplit("-", 1)[1]) for p in path.parent.glob(path.name + PARTIAL_SUFFIX + "*")]
    side = path.with_name(f"{path.name}{PARTIAL_SUFFIX}{max(numbers, default=0) + 1}")
    with path.open("r+b") as handle:
        size = handle.seek(0, os.SEEK_END)
        handle.seek(size - tail)
        side.write_bytes(handle.read())
        fsync_path(side)
        handle.truncate(size - tail)
        handle.flush()
        os.fsync(handle.fileno())
    return side


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` durably: a temporary file, fsynced, renamed, the folder fsynced."""
    temporary = path.with_name(f".{path.name}.tmp")
    try:
        with temporary.open("w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    fsync_path(path.parent)


def lock_folder(path: Path) -> int | None:
    """Hold ``path`` (a folder) for this process with an exclusive ``flock``: the descriptor, whose
    closing releases the lock, or None when another process holds it. The kernel drops the lock when
    the process dies, kill -9 included."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(descriptor)
        return None
    return descriptor


def fsync_path(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
