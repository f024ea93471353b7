"""Outputs the system refuses (issue 14, item 13): a read-only folder and a full disk, made real with a
tmpfs mounted in a private user and mount namespace (``unshare -rm``), so the test needs no root and a
root user cannot write past ``ro`` either. Each command says it in one ``error:`` line, exit 2, and
what was already written is kept."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sandbox.records import ModelInfo, Task, Trace, read_traces, write_trace

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"


import openai_stub as stub  # noqa: E402  (loaded by tests/conftest.py)


def _can_mount(tmp: Path) -> str | None:
    if shutil.which("unshare") is None:
        return "no unshare(1) here"
    probe = subprocess.run(
        ["unshare", "-rm", "sh", "-c", f"mount -t tmpfs -o size=64k tmpfs {tmp}"],
        capture_output=True,
        text=True,
        check=False,
    )
    return (
        None if probe.returncode == 0 else f"cannot mount a tmpfs in a user namespace: {probe.stderr.strip()}"
    )


@pytest.fixture
def mount(tmp_path: Path) -> Iterator[Path]:
    point = tmp_path / "mnt"
    point.mkdir()
    why = _can_mount(point)
    if why is not None:
        pytest.skip(why)
    yield point


def in_tmpfs(
    point: Path, options: str, *args: str, keep: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """``python -m sandbox ARGS`` with a fresh tmpfs (``options``) on ``point``; what it held at the
    end is copied to ``keep`` (the tmpfs goes with the namespace)."""
    copy = f"cp -a {point}/. {keep}/;" if keep is not None else ""
    script = f'mount -t tmpfs -o {options} tmpfs {point} || exit 99; "$@"; rc=$?; {copy} exit $rc'
    return subprocess.run(
        ["unshare", "-rm", "sh", "-c", script, "sh", sys.executable, "-m", "sandbox", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


PROGRESS = re.compile(r"\[\d+/\d+\] ")


def _one_error(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 2, (done.returncode, done.stderr[-2000:])
    # Besides the progress lines of finished episodes ("[k/N] ..."), exactly one line: the error.
    lines = [line for line in done.stderr.splitlines() if line.strip() and not PROGRESS.match(line)]
    assert len(lines) == 1, done.stderr[-2000:]
    assert lines[0].startswith("error: ")
    return lines[0]


@pytest.fixture(scope="module")
def server() -> Iterator[Any]:
    with stub.StubServer(
        default=stub.Reply(body=stub.chat("<think>\nsure\n</think>\n<answer>4</answer>"))
    ) as s:
        yield s


def _inputs(folder: Path, count: int) -> tuple[Path, Path]:
    tasks = folder / "tasks.jsonl"
    tasks.write_text(
        "".join(
            Task(id=f"t{i}", prompt=f"task {i}", expected_answer="4").model_dump_json() + "\n"
            for i in range(count)
        )
    )
    servers = folder / "mcp.json"
    servers.write_text(json.dumps({"mcpServers": {}}))
    return tasks, servers


def test_a_read_only_folder_refuses_every_command_in_one_line(
    mount: Path, tmp_path: Path, server: Any
) -> None:
    tasks, servers = _inputs(tmp_path, 2)
    model = ["--base-url", server.url, "--mode", "free", "--rewards", "outcome"]
    traces = tmp_path / "in.jsonl"
    with traces.open("w") as handle:
        write_trace(
            handle,
            Trace(
                id="x",
                task_id="t0",
                task=Task(id="t0", prompt="p"),
                model=ModelInfo(name="m"),
                stop_reason="answer",
                final_answer="4",
            ),
        )
    read_only = "ro,size=64k"
    inputs = ["--tasks", str(tasks), "--servers", str(servers)]
    cases = {
        # the folder is the mount itself: it exists, so only writing into it fails
        "generate": ["generate", *inputs, "--out", str(mount), "--n", "1", *model],
        "generate-new": ["generate", *inputs, "--out", str(mount / "run"), "--n", "1", *model],
        "run": ["run", *inputs, "--out", str(mount / "t.jsonl"), *model],
        "score": ["score", str(traces), "--rewards", "outcome", "-o", str(mount / "s.jsonl")],
        "export": ["export", str(traces), "--format", "sft", "-o", str(mount / "sft")],
    }
    for name, args in cases.items():
        line = _one_error(in_tmpfs(mount, read_only, *args))
        assert "Read-only file system" in line, (name, line)
        assert str(mount) in line, (name, line)


def test_a_full_disk_stops_generate_in_one_line_and_loses_nothing(
    mount: Path, tmp_path: Path, server: Any
) -> None:
    tasks, servers = _inputs(tmp_path, 60)
    kept = tmp_path / "kept"
    kept.mkdir()
    args = ["generate", "--tasks", str(tasks), "--servers", str(servers), "--out", str(mount / "run")]
    args += ["--n", "1", "--base-url", server.url, "--mode", "free", "--rewards", "outcome"]
    line = _one_error(in_tmpfs(mount, "size=48k", *args, keep=kept))
    assert "No space left on device" in line and "already in it are kept" in line
    run = kept / "run"
    written = read_traces(run / "traces.jsonl")  # a cut last line is left out, never an error
    assert 0 < len(written) < 60
    before = {trace.task_id: trace for trace in written}
    resumed = subprocess.run(
        [sys.executable, "-m", "sandbox", *args[:6], str(run), *args[7:], "--resume"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert resumed.returncode == 0, resumed.stderr
    after = read_traces(run / "traces.jsonl")
    assert sorted(trace.task_id for trace in after) == sorted(f"t{i}" for i in range(60))
    for trace in after:
        if trace.task_id in before:
            assert trace == before[trace.task_id]
