"""Files: read, write, list and search inside one root folder, and nowhere else.

Every path a model gives is relative to the root. What is refused, each with a message that says why:

- absolute paths (``/etc/passwd``), and paths whose ``..`` climbs above the root;
- symbolic links that lead outside the root, directly or through a chain of links; links that stay
  inside the root are followed;
- regular files with more than one hard link: a hard link is indistinguishable from the file it shares
  an inode with, which may live outside the root, so any file with ``st_nlink > 1`` is refused (a hard
  link between two files inside the root is refused too — the price of not being able to tell);
- anything that is not a regular file or a folder (FIFOs, sockets, devices), and paths with a NUL byte;
- reads past ``max_read_bytes`` (the text is cut and ``next_offset`` says where to go on), writes over
  ``max_write_bytes``, writes that would grow the folder past ``max_total_bytes`` of file content or
  past ``max_entries`` files and folders, and writes more than ``max_depth`` levels below the root;
  listings and searches stop at ``max_results``.

Every file and folder counts as an entry whatever its size, so empty files and deep chains of folders
are bounded too: the folder's disk use stays within ``max_total_bytes`` plus a few kilobytes (a block
and a directory entry) per entry. What the folder holds is counted once, when the server starts, and
then kept up to date by each write, so a write costs as much as its own path, not as the whole tree;
changes made to the folder by anyone else are not seen until the server restarts.

How a path is opened: it is resolved with ``os.path.realpath`` and checked to lie under the root (that
gives the clear refusals above); then it is opened again component by component from the root with
``O_NOFOLLOW`` on every step, so a symlink swapped in between the check and the open fails instead of
being followed. Writes open the final component with ``O_NOFOLLOW`` and check the link count before
truncating anything.

Searches (substring or regular expression, over file names and contents) run their matching in a short
child process with a time limit, so a pathological regular expression cannot stall the server.

The folder's state is also an MCP resource, ``files://state`` (JSON: ``files`` maps each file's
path to its text, or null when it is binary, hard-linked or over :data:`STATE_FILE_BYTES`;
``folders`` lists the folders; at most :data:`STATE_MAX_ENTRIES` entries, ``truncated`` says when
cut). Resources are not tools: a model shown the tool list never sees it; the sandbox reads it to
check a task's ``expected_state``.

Run it over stdio with ``python -m servers.files ROOT`` (the folder is created if missing).
"""

from __future__ import annotations

import argparse
import builtins
import errno
import json
import os
import re
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

from mcp.server import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations
from pydantic import BaseModel, Field

MAX_PATH_CHARS = 1024
MAX_OFFSET = 2**63 - 1  # the largest file offset Linux has
MAX_PATTERN_CHARS = 200
SEARCH_FILE_BYTES = 1_000_000  # larger files are skipped by search
SEARCH_BUDGET_BYTES = 20_000_000  # file content one search reads at most
MATCH_TEXT_CHARS = 200  # a matching line is shown up to this many characters
STATE_URI = "files://state"
STATE_FILE_BYTES = 100_000  # a larger file's text is not in the state resource (null)
STATE_MAX_ENTRIES = 1_000  # files and folders the state resource lists at most

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# O_NONBLOCK: opening a FIFO must not wait for a writer; the file type is checked right after.
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_WRITE_FLAGS = os.O_WRONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


@dataclass(frozen=True)
class FileLimits:
    """Caps of one files server."""

    max_read_bytes: int = 100_000
    max_write_bytes: int = 1_000_000
    max_results: int = 100
    max_total_bytes: int = 100_000_000  # of file content, all files together
    search_timeout_s: float = 5.0
    max_entries: int = 10_000  # files and folders (and anything else) in the root, at every level
    max_depth: int = 32  # path components below the root that a write may reach


# --------------------------------------------------------------------------- records


class FileText(BaseModel):
    """Part or all of a text file."""

    path: str = Field(description="The file, relative to the root.")
    text: str = Field(description="The text read (UTF-8; undecodable bytes become U+FFFD).")
    size_bytes: int = Field(description="Size of the whole file in bytes.")
    offset: int = Field(description="Byte offset the text starts at.")
    truncated: bool = Field(description="True when the file goes on past this text.")
    next_offset: int | None = Field(description="Offset to read next when truncated, else null.")


class Written(BaseModel):
    """The outcome of a write."""

    path: str = Field(description="The file, relative to the root.")
    bytes_written: int = Field(description="Bytes written by this call.")
    size_bytes: int = Field(description="Size of the file after the write.")
    created: bool = Field(description="True when the file did not exist before.")


class Entry(BaseModel):
    """One item of a folder."""

    path: str = Field(description="Relative to the root, '/'-separated.")
    kind: Literal["file", "folder", "symlink", "other"] = Field(
        description="What it is; symlinks are listed, not followed."
    )
    size_bytes: int | None = Field(description="Size of a file in bytes; null for the other kinds.")


class Listing(BaseModel):
    """The items of a folder, sorted by path."""

    path: str = Field(description="The folder listed, relative to the root.")
    entries: list[Entry] = Field(description="Its items (and their items when recursive).")
    truncated: bool = Field(description="True when the listing stopped at the result cap.")


class Match(BaseModel):
    """A file whose name matches, or one line of a file that matches."""

    path: str = Field(description="The file, relative to the root.")
    line: int | None = Field(description="Line number (1-based) of a content match; null for a name match.")
    text: str = Field(description="The matching line (cut to 200 characters), or the path for a name match.")


class SearchResults(BaseModel):
    """What a search found."""

    query: str = Field(description="The query as given.")
    regex: bool = Field(description="Whether the query was read as a regular expression.")
    matches: list[Match] = Field(description="Name matches and content matches, in path order.")
    truncated: bool = Field(description="True when the search stopped at the result cap.")
    files_searched: int = Field(description="Files whose contents were searched.")
    files_skipped: int = Field(
        description="Files not searched: binary, too large, hard-linked, or past the search budget."
    )


# --------------------------------------------------------------------------- errors


_ERRNO_TEXT = {
    errno.ENOENT: "does not exist",
    errno.ENOTDIR: "has a part that is not a folder",
    errno.EISDIR: "is a folder",
    errno.ELOOP: "is a symbolic link that cannot be followed here (it changed, or it loops)",
    errno.EACCES: "is not accessible (permission denied)",
    errno.EPERM: "is not accessible (operation not permitted)",
    errno.ENOSPC: "cannot be written: the disk is full",
    errno.EFBIG: "cannot be written: the file would be too large",
    errno.ENAMETOOLONG: "has a name that is too long",
    errno.ENXIO: "is not a regular file",
}


@contextmanager
def _reporting(path: str) -> Iterator[None]:
    """Turn an OSError into a ToolError naming the path the model gave."""
    try:
        yield
    except OSError as exc:
        reason = _ERRNO_TEXT.get(exc.errno or 0, exc.strerror or type(exc).__name__)
        raise ToolError(f"{path!r} {reason}.") from exc


# --------------------------------------------------------------------------- the folder


def _utf8_cut(data: bytes) -> bytes:
    """``data`` without a UTF-8 sequence cut in half at its end."""
    for back in range(1, min(4, len(data)) + 1):
        byte = data[-back]
        if byte & 0xC0 != 0x80:  # a lead byte (or ASCII): does its sequence fit?
            need = 1 if byte < 0x80 else 2 if byte < 0xE0 else 3 if byte < 0xF0 else 4
            return data if back >= need else data[:-back]
    return data


def _kind(mode: int) -> Literal["file", "folder", "symlink", "other"]:
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISDIR(mode):
        return "folder"
    return "symlink" if stat.S_ISLNK(mode) else "other"


@dataclass
class Usage:
    """What the root folder holds, as its quota counts it."""

    bytes: int = 0  # sizes of its regular files
    entries: int = 0  # its files, folders and other items, at every level


class Folder:
    """The root folder and every operation on it; each path is checked before it is used."""

    def __init__(self, root: str | Path, limits: FileLimits) -> None:
        path = Path(root)
        if path.exists() and not path.is_dir():
            raise NotADirectoryError(f"files root {str(root)!r} exists and is not a folder")
        path.mkdir(parents=True, exist_ok=True)
        self.root = os.path.realpath(path)
        self.limits = limits
        self.usage = Usage()
        for _, info in self._walk(()):  # the one walk of the whole tree; writes keep it up to date
            self.usage.entries += 1
            self.usage.bytes += info.st_size if stat.S_ISREG(info.st_mode) else 0
        self._writing = threading.Lock()  # a write's check, change and count happen together

    # -- paths -------------------------------------------------------------------------------

    def parts(self, path: str) -> tuple[str, ...]:
        """The components, under the root, of what ``path`` resolves to; a ToolError if it escapes."""
        if "\x00" in path:
            raise ToolError(
                "The path contains a NUL byte; give a plain relative path such as 'notes/todo.txt'."
            )
        if os.path.isabs(path):
            raise ToolError(
                f"{path!r} is an absolute path; paths are relative to the root folder, e.g. 'notes/todo.txt'."
            )
        joined = os.path.join(self.root, path)
        if not self._inside(os.path.normpath(joined)):
            raise ToolError(f"{path!r} leads outside the root folder ('..' climbs above it); refused.")
        real = os.path.realpath(joined)
        if not self._inside(real):
            raise ToolError(f"{path!r} leads outside the root folder through a symbolic link; refused.")
        relative = os.path.relpath(real, self.root)
        return () if relative == "." else tuple(relative.split(os.sep))

    def _inside(self, path: str) -> bool:
        return path == self.root or path.startswith(self.root + os.sep)

    def _open_dir(self, parts: tuple[str, ...], *, create: bool = False) -> int:
        """An fd on the folder ``parts``, opened one component at a time without following symlinks."""
        return self._descend(parts, create)[0]

    def _descend(self, parts: tuple[str, ...], create: bool) -> tuple[int, int]:
        """An fd on the folder ``parts``, and how many folders were made on the way (``create``)."""
        fd = os.open(self.root, _DIR_FLAGS)
        made = 0
        try:
            for part in parts:
                if create:
                    try:
                        os.mkdir(part, 0o755, dir_fd=fd)
                        made += 1
                    except FileExistsError:
                        pass
                child = os.open(part, _DIR_FLAGS, dir_fd=fd)
                os.close(fd)
                fd = child
        except BaseException:
            os.close(fd)
            raise
        return fd, made

    def _plan(self, parts: tuple[str, ...]) -> tuple[int, os.stat_result | None]:
        """How many folders a write to ``parts`` has to make, and the lstat of the file (None: new)."""
        fd = os.open(self.root, _DIR_FLAGS)
        try:
            for depth, part in enumerate(parts[:-1]):
                try:
                    child = os.open(part, _DIR_FLAGS, dir_fd=fd)
                except FileNotFoundError:
                    return len(parts) - 1 - depth, None
                os.close(fd)
                fd = child
            try:
                return 0, os.stat(parts[-1], dir_fd=fd, follow_symlinks=False)
            except FileNotFoundError:
                return 0, None
        finally:
            os.close(fd)

    def _check_file(self, fd: int, path: str) -> os.stat_result:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise ToolError(f"{path!r} is a folder; use list_files to see what it holds.")
        if not stat.S_ISREG(info.st_mode):
            raise ToolError(f"{path!r} is not a regular file (a FIFO, socket or device); refused.")
        if info.st_nlink > 1:
            raise ToolError(
                f"{path!r} has {info.st_nlink} hard links; files with several links are refused, "
                "because another link may be outside the root folder."
            )
        return info

    @staticmethod
    def _show(parts: tuple[str, ...]) -> str:
        return "/".join(parts) or "."

    # -- read and write ----------------------------------------------------------------------

    def read(self, path: str, offset: int) -> FileText:
        parts = self.parts(path)
        if not parts:
            raise ToolError("'.' is the root folder; give a file, or use list_files.")
        with _reporting(path):
            folder = self._open_dir(parts[:-1])
            try:
                fd = os.open(parts[-1], _READ_FLAGS, dir_fd=folder)
            finally:
                os.close(folder)
            try:
                info = self._check_file(fd, path)
                # Past the end there is nothing to read (and pread refuses offsets near 2**63).
                data = os.pread(fd, self.limits.max_read_bytes + 1, offset) if offset < info.st_size else b""
            finally:
                os.close(fd)
        more = len(data) > self.limits.max_read_bytes
        if more:
            data = _utf8_cut(data[: self.limits.max_read_bytes])
        if b"\x00" in data:
            raise ToolError(f"{path!r} is a binary file; only text files can be read.")
        return FileText(
            path=self._show(parts),
            text=data.decode("utf-8", errors="replace"),
            size_bytes=info.st_size,
            offset=offset,
            truncated=more,
            next_offset=offset + len(data) if more else None,
        )

    def write(self, path: str, content: str, append: bool) -> Written:
        data = content.encode("utf-8")
        if len(data) > self.limits.max_write_bytes:
            raise ToolError(
                f"The content is {len(data)} bytes; one write takes at most "
                f"{self.limits.max_write_bytes} bytes."
            )
        parts = self.parts(path)
        if not parts:
            raise ToolError("'.' is the root folder; give a file name such as 'notes.txt'.")
        if len(parts) > self.limits.max_depth:
            raise ToolError(
                f"{path!r} is {len(parts)} levels below the root folder; files may be at most "
                f"{self.limits.max_depth} levels deep."
            )
        with self._writing, _reporting(path):
            self._check_room(parts, len(data), append)
            folder, made = self._descend(parts[:-1], create=True)
            self.usage.entries += made
            try:
                fd, created = self._open_for_write(folder, parts[-1])
            finally:
                os.close(folder)
            self.usage.entries += created
            try:
                size = self._replace(fd, path, data, append)
            finally:
                os.close(fd)
        return Written(path=self._show(parts), bytes_written=len(data), size_bytes=size, created=created)

    def _replace(self, fd: int, path: str, data: bytes, append: bool) -> int:
        """Write ``data`` into the open file, counting the change in size; the new size."""
        before = self._check_file(fd, path).st_size
        try:
            if append:
                os.lseek(fd, 0, os.SEEK_END)
            else:
                os.ftruncate(fd, 0)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
        finally:  # counted even when the disk filled up half way
            size = os.fstat(fd).st_size
            self.usage.bytes += size - before
        return size

    @staticmethod
    def _open_for_write(folder: int, name: str) -> tuple[int, bool]:
        try:
            return os.open(name, _WRITE_FLAGS | os.O_CREAT | os.O_EXCL, 0o644, dir_fd=folder), True
        except FileExistsError:
            return os.open(name, _WRITE_FLAGS, dir_fd=folder), False

    def _check_room(self, parts: tuple[str, ...], size: int, append: bool) -> None:
        """Refuse a write that would take the folder past its caps, before anything is made."""
        missing, info = self._plan(parts)
        new_entries = missing + (info is None)
        old_size = info.st_size if info is not None and stat.S_ISREG(info.st_mode) else 0
        growth = size if append else size - old_size
        usage, limits = self.usage, self.limits
        if new_entries and usage.entries + new_entries > limits.max_entries:
            raise ToolError(
                f"The root folder holds {usage.entries} files and folders; this write would make "
                f"{new_entries} more, past its limit of {limits.max_entries}. Write into existing "
                "files and folders instead."
            )
        if growth > 0 and usage.bytes + growth > limits.max_total_bytes:
            raise ToolError(
                f"The root folder holds {usage.bytes} bytes; this write would take it past its limit of "
                f"{limits.max_total_bytes} bytes. Replace files with shorter ones first."
            )

    # -- list and search ---------------------------------------------------------------------

    def _walk(
        self, parts: tuple[str, ...], recursive: bool = True
    ) -> Iterator[tuple[tuple[str, ...], os.stat_result]]:
        """(parts, lstat) of everything under the folder ``parts``, sorted, never following a symlink.

        Depth first with a stack of its own, so a tree of any depth is walked without recursion.
        """
        pending = [iter(self._scan(parts))]
        while pending:
            item = next(pending[-1], None)
            if item is None:
                pending.pop()
                continue
            yield item
            if recursive and stat.S_ISDIR(item[1].st_mode):
                try:
                    pending.append(iter(self._scan(item[0])))
                except OSError:  # replaced or removed while walking: list what is still there
                    continue

    def _scan(self, parts: tuple[str, ...]) -> list[tuple[tuple[str, ...], os.stat_result]]:
        fd = self._open_dir(parts)
        try:
            with os.scandir(fd) as scan:
                items = sorted((entry.name, entry.stat(follow_symlinks=False)) for entry in scan)
        finally:
            os.close(fd)
        return [((*parts, name), info) for name, info in items]

    def _walk_folder(
        self, path: str, parts: tuple[str, ...], recursive: bool
    ) -> Iterator[tuple[tuple[str, ...], os.stat_result]]:
        try:
            yield from self._walk(parts, recursive)
        except NotADirectoryError as exc:
            if not parts:
                raise
            raise ToolError(f"{path!r} is a file, not a folder; read it with read_file.") from exc

    def list(self, path: str, recursive: bool) -> Listing:
        parts = self.parts(path)
        entries: list[Entry] = []
        truncated = False
        with _reporting(path):
            for item, info in self._walk_folder(path, parts, recursive):
                if len(entries) == self.limits.max_results:
                    truncated = True
                    break
                kind = _kind(info.st_mode)
                size = info.st_size if kind == "file" else None
                entries.append(Entry(path=self._show(item), kind=kind, size_bytes=size))
        return Listing(path=self._show(parts), entries=entries, truncated=truncated)

    def search(self, query: str, path: str, regex: bool, case_sensitive: bool) -> SearchResults:
        pattern = query if regex else re.escape(query)
        try:
            re.compile(pattern, 0 if case_sensitive else re.IGNORECASE)
        except (re.error, OverflowError) as exc:  # OverflowError: a repeat count such as a{99999999999}
            raise ToolError(f"{query!r} is not a valid regular expression: {exc}.") from exc
        documents, searched, skipped = self._documents(path)
        job = {
            "pattern": pattern,
            "ignore_case": not case_sensitive,
            "limit": self.limits.max_results,
            "width": MATCH_TEXT_CHARS,
        }
        matches, truncated = _run_matcher({**job, "documents": documents}, self.limits.search_timeout_s)
        return SearchResults(
            query=query,
            regex=regex,
            matches=matches,
            truncated=truncated,
            files_searched=searched,
            files_skipped=skipped,
        )

    def _documents(self, path: str) -> tuple[builtins.list[tuple[str, str | None]], int, int]:
        """(path, text or None) of every file under ``path``: None where only the name is searched."""
        parts = self.parts(path)
        documents: list[tuple[str, str | None]] = []
        searched = skipped = budget = 0
        with _reporting(path):
            for item, info in self._walk_folder(path, parts, recursive=True):
                if not stat.S_ISREG(info.st_mode):
                    continue
                text = None
                if info.st_size <= SEARCH_FILE_BYTES and budget + info.st_size <= SEARCH_BUDGET_BYTES:
                    text = self._search_text(item)
                if text is None:
                    skipped += 1
                else:
                    searched += 1
                    budget += info.st_size
                documents.append((self._show(item), text))
        return documents, searched, skipped

    def state(self) -> dict[str, object]:
        """The folder as the ``files://state`` resource shows it (module doc)."""
        files: dict[str, str | None] = {}
        folders: set[str] = set()  # ("list" is a method of this class)
        truncated = False
        for item, info in self._walk(()):
            if len(files) + len(folders) == STATE_MAX_ENTRIES:
                truncated = True
                break
            if stat.S_ISDIR(info.st_mode):
                folders.add(self._show(item))
            elif stat.S_ISREG(info.st_mode):
                small = info.st_size <= STATE_FILE_BYTES
                files[self._show(item)] = self._search_text(item) if small else None
        return {"files": files, "folders": sorted(folders), "truncated": truncated}

    def _search_text(self, parts: tuple[str, ...]) -> str | None:
        """The text of a file for searching, or None when it is refused, binary or gone."""
        try:
            folder = self._open_dir(parts[:-1])
            try:
                fd = os.open(parts[-1], _READ_FLAGS, dir_fd=folder)
            finally:
                os.close(folder)
            try:
                info = os.fstat(fd)
                if not stat.S_ISREG(info.st_mode) or info.st_nlink > 1:
                    return None
                data = os.pread(fd, SEARCH_FILE_BYTES, 0)
            finally:
                os.close(fd)
        except OSError:
            return None
        return None if b"\x00" in data else data.decode("utf-8", errors="replace")


# --------------------------------------------------------------------------- matching

# The matcher runs in a child process: Python's regular expressions backtrack, and a pattern such as
# (a+)+$ on a long line would otherwise hold a server thread for ever. The child gets the documents as
# JSON on stdin and prints the matches; the parent kills it after the search timeout.
_MATCHER = """
import json, re, sys
job = json.load(sys.stdin)
pattern = re.compile(job["pattern"], re.IGNORECASE if job["ignore_case"] else 0)
limit, found = job["limit"], []
for path, text in job["documents"]:
    if pattern.search(path.rsplit("/", 1)[-1]):
        found.append([path, None, path])
    for number, line in enumerate((text or "").splitlines(), 1):
        if len(found) > limit:
            break
        if pattern.search(line):
            found.append([path, number, line.strip()[: job["width"]]])
    if len(found) > limit:
        break
json.dump({"matches": found[:limit], "truncated": len(found) > limit}, sys.stdout)
"""


def _run_matcher(job: dict[str, object], timeout: float) -> tuple[list[Match], bool]:
    try:
        done = subprocess.run(
            [sys.executable, "-I", "-S", "-c", _MATCHER],
            input=json.dumps(job).encode(),
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise ToolError(
            f"The search took longer than {timeout:g} s and was stopped; "
            "use a simpler pattern or search a narrower path."
        ) from exc
    if done.returncode != 0:
        last = (done.stderr.decode(errors="replace").strip().splitlines() or ["no message"])[-1]
        raise ToolError(f"The search failed: {last}")
    answer = json.loads(done.stdout)
    matches = [Match(path=path, line=line, text=text) for path, line, text in answer["matches"]]
    return matches, bool(answer["truncated"])


# --------------------------------------------------------------------------- the server

_READ_ONLY = ToolAnnotations(read_only_hint=True, idempotent_hint=True, open_world_hint=False)
_WRITES = ToolAnnotations(read_only_hint=False, destructive_hint=True, open_world_hint=False)

FilePath = Annotated[
    str,
    Field(
        description="A path relative to the root folder, e.g. 'notes/todo.txt'; no absolute paths.",
        min_length=1,
        max_length=MAX_PATH_CHARS,
    ),
]
FolderPath = Annotated[
    str,
    Field(
        description="A folder relative to the root; '.' is the root itself.",
        min_length=1,
        max_length=MAX_PATH_CHARS,
    ),
]
Offset = Annotated[
    int, Field(description="Byte offset to start reading at (from next_offset).", ge=0, le=MAX_OFFSET)
]
Append = Annotated[bool, Field(description="Add to the end of the file instead of replacing it.")]
Recursive = Annotated[bool, Field(description="Also list the contents of sub-folders.")]
Query = Annotated[
    str,
    Field(description="Text to find in file names and lines.", min_length=1, max_length=MAX_PATTERN_CHARS),
]
Regex = Annotated[bool, Field(description="Read the query as a Python regular expression.")]
CaseSensitive = Annotated[bool, Field(description="Match upper and lower case exactly.")]


def make_server(root: str | Path, limits: FileLimits | None = None) -> MCPServer:
    """A files server confined to ``root`` (created if missing)."""
    limits = limits or FileLimits()
    folder = Folder(root, limits)
    content_type = Annotated[
        str,
        Field(
            description=f"The text to write (UTF-8, at most {limits.max_write_bytes} bytes).",
            max_length=limits.max_write_bytes,
        ),
    ]
    server = MCPServer(
        "files",
        version="1.0.0",
        instructions=(
            "A folder of files. Every path is relative to the folder's root; paths that leave it are refused."
        ),
    )

    # Plain functions: MCPServer runs them on worker threads, so file I/O never blocks the event loop.
    @server.tool(annotations=_READ_ONLY)
    def read_file(path: FilePath, offset: Offset = 0) -> FileText:
        """Read a text file. Long files come in parts: read again from next_offset."""
        return folder.read(path, offset)

    def write_file(path: FilePath, content: str, append: Append = False) -> Written:
        """Write a text file, creating it and its folders; replaces the file unless append is true."""
        return folder.write(path, content, append)

    # The content's schema carries this server's write limit, so the annotation is set here, as an object.
    write_file.__annotations__["content"] = content_type
    server.tool(annotations=_WRITES)(write_file)

    @server.tool(annotations=_READ_ONLY)
    def list_files(path: FolderPath = ".", recursive: Recursive = False) -> Listing:
        """List a folder: files with their sizes, sub-folders and symlinks."""
        return folder.list(path, recursive)

    @server.tool(annotations=_READ_ONLY)
    def search_files(
        query: Query, path: FolderPath = ".", regex: Regex = False, case_sensitive: CaseSensitive = False
    ) -> SearchResults:
        """Find files whose name matches the query, and lines of text files that contain it."""
        return folder.search(query, path, regex, case_sensitive)

    @server.resource(STATE_URI, name="state", mime_type="application/json")
    def state() -> str:
        """The folder's files and their text (not a tool: what the sandbox checks)."""
        return json.dumps(folder.state())

    return server


def main(argv: list[str] | None = None) -> None:
    """``python -m servers.files ROOT [--max-read-bytes N] ...``: serve ROOT over stdio."""
    defaults = FileLimits()
    parser = argparse.ArgumentParser(prog="python -m servers.files", description=main.__doc__)
    parser.add_argument(
        "root", help="the folder to serve (relative to the current directory; created if missing)"
    )
    parser.add_argument("--max-read-bytes", type=int, default=defaults.max_read_bytes)
    parser.add_argument("--max-write-bytes", type=int, default=defaults.max_write_bytes)
    parser.add_argument("--max-results", type=int, default=defaults.max_results)
    parser.add_argument("--max-total-bytes", type=int, default=defaults.max_total_bytes)
    parser.add_argument("--search-timeout", type=float, default=defaults.search_timeout_s, metavar="SECONDS")
    parser.add_argument("--max-entries", type=int, default=defaults.max_entries)
    parser.add_argument("--max-depth", type=int, default=defaults.max_depth)
    args = parser.parse_args(argv)
    limits = FileLimits(
        max_read_bytes=args.max_read_bytes,
        max_write_bytes=args.max_write_bytes,
        max_results=args.max_results,
        max_total_bytes=args.max_total_bytes,
        search_timeout_s=args.search_timeout,
        max_entries=args.max_entries,
        max_depth=args.max_depth,
    )
    try:
        server = make_server(args.root, limits)
    except OSError as exc:
        parser.exit(2, f"files: {exc}\n")
    server.run()  # stdio; MCPServer sends its logs to stderr, stdout is the wire


if __name__ == "__main__":
    main()
