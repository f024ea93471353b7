"""Ctrl-C during a generation: the run stops within seconds, keeps every finished trace, says how to
resume, and the resume completes it. The real embedded model over the real bundled servers, through
``python -m sandbox`` in its own session, SIGINT sent to the whole process group as a terminal does."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time
from dataclasses import replace
from functools import partial
from pathlib import Path

import anyio
import pytest

from sandbox.cli._runs import resume_command
from sandbox.records import ConfigError, read_traces
from sandbox.runs import generate
from tests.sandbox.run_fixtures import NO_SERVER_TASKS, options, scripted_model

ROOT = Path(__file__).resolve().parents[2]
TASKS = ["calc-pens-word-problem", "no-tool-two-plus-two", "calc-percent-of"]
# One long turn per episode: the second episode is surely generating when the signal comes.
SETTINGS = ["--max-steps", "1", "--max-tokens", "384", "--rewards", "tool_syntax,outcome"]


def _start(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "sandbox", *args],
        cwd=ROOT,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, so the servers get the SIGINT too
        # A background shell job ignores SIGINT, and children inherit that: the sandbox must see it.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def _lines(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


def _interrupt_after_first_trace(process: subprocess.Popen[str], traces: Path) -> tuple[float, str]:
    deadline = time.monotonic() + 600
    while _lines(traces) < 1:
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "no trace in 600 s"
        time.sleep(0.05)
    time.sleep(0.5)  # the next episode's turn is under way
    assert process.poll() is None, "the run ended before the signal"
    sent = time.monotonic()
    os.killpg(process.pid, signal.SIGINT)
    _, stderr = process.communicate(timeout=10)  # a functional bound: it stops, not how fast
    return time.monotonic() - sent, stderr


@pytest.mark.model
@pytest.mark.parametrize("command", ["run", "generate"])
def test_ctrl_c_mid_generation_keeps_finished_traces_and_resumes(tmp_path: Path, command: str) -> None:
    out = tmp_path / ("traces.jsonl" if command == "run" else "runfolder")
    traces = out if command == "run" else out / "traces.jsonl"
    picks = [arg for task in TASKS for arg in ("--task", task)]
    extra = [] if command == "run" else ["--n", "1", "--parallel", "2", "--temperature", "0"]
    args = [command, "--tasks", "seed", "--servers", "servers/mcp.json", "--out", str(out)]
    process = _start(*args, *SETTINGS, *extra, *picks)
    seconds, stderr = _interrupt_after_first_trace(process, traces)
    assert process.returncode == 130, stderr
    line = next(line for line in stderr.splitlines() if line.startswith("interrupted:"))
    assert "resume with: " in line, line
    kept = read_traces(traces)  # every line is a whole, valid trace
    assert 1 <= len(kept) < len(TASKS)
    assert f"{len(kept)} of {len(TASKS)} in all" in line
    resume = shlex.split(line.split("resume with: ", 1)[1])
    assert resume[-1] == "--resume" and resume[1:3] == ["-m", "sandbox"]
    print(f"{command}: stopped {seconds:.2f} s after SIGINT, {len(kept)} trace(s) kept")

    done = subprocess.run(resume, cwd=ROOT, capture_output=True, text=True, timeout=900, check=False)
    assert done.returncode == 0, done.stderr
    finished = read_traces(traces)
    assert sorted(t.task_id for t in finished) == sorted(TASKS)
    assert [t.id for t in finished[: len(kept)]] == [t.id for t in kept]  # kept as they were


def test_resume_command_drops_overwrite_and_adds_resume() -> None:
    argv = ["/x/sandbox/__main__.py", "run", "--out", "a b.jsonl", "--overwrite", "--task", "t"]
    assert resume_command(argv) == shlex.join(
        [sys.executable, "-m", "sandbox", "run", "--out", "a b.jsonl", "--task", "t", "--resume"]
    )
    assert resume_command(["/usr/bin/sandbox", "generate", "--resume"]) == "sandbox generate --resume"


def test_a_trace_file_resume_keeps_its_traces_and_refuses_another_mode(tmp_path: Path) -> None:
    out = tmp_path / "traces.jsonl"
    spec = options(tmp_path, NO_SERVER_TASKS, layout="file", n=1, out=out, only=(NO_SERVER_TASKS[0].id,))
    anyio.run(partial(generate, spec, model=scripted_model()))
    first = read_traces(out)
    assert len(first) == 1
    with out.open("a") as handle:
        handle.write('{"id": "half a li')  # a kill -9 mid-line
    resumed = replace(spec, only=(), resume=True)
    summary = anyio.run(partial(generate, resumed, model=scripted_model()))
    assert (summary.before, summary.written) == (1, len(NO_SERVER_TASKS) - 1)
    after = read_traces(out)
    assert after[0].id == first[0].id and len(after) == len(NO_SERVER_TASKS)
    assert any("half-written" in note for note in summary.notes)
    with pytest.raises(ConfigError, match="another mode"):
        anyio.run(partial(generate, replace(resumed, mode="free"), model=scripted_model()))
    with pytest.raises(ConfigError, match="another sampling"):
        anyio.run(partial(generate, replace(resumed, seed=7), model=scripted_model()))
