"""Bad input gets a one-line error and exit code 2, before any model or server starts."""

from __future__ import annotations

import json
import random
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

Done = subprocess.CompletedProcess[str]


@pytest.fixture
def run(sandbox_cli: Callable[..., Done], tmp_path: Path) -> Callable[..., Done]:
    """``sandbox run`` on the seed suite and the bundled servers unless told otherwise."""

    def run(*extra: str, tasks: str | Path = "seed", servers: str | Path = "servers/mcp.json") -> Done:
        out = tmp_path / "t.jsonl"
        return sandbox_cli(
            "run", "--tasks", str(tasks), "--servers", str(servers), "--out", str(out), *extra, timeout=120
        )

    return run


def _error_line(done: Done) -> str:
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    return lines[0]


def test_missing_model_file(run: Callable[..., Done], tmp_path: Path) -> None:
    missing = tmp_path / "nope.gguf"
    done = run("--model", str(missing))
    assert done.returncode == 2
    assert _error_line(done) == f"error: model file not found: {missing}"


def test_model_file_that_is_not_gguf(run: Callable[..., Done], tmp_path: Path) -> None:
    fake = tmp_path / "fake.gguf"
    fake.write_bytes(b"not a model")
    done = run("--model", str(fake))
    assert done.returncode == 2 and str(fake) in _error_line(done) and "not GGUF" in done.stderr


def test_missing_server_command(run: Callable[..., Done], tmp_path: Path) -> None:
    config = tmp_path / "mcp.json"
    config.write_text(json.dumps({"mcpServers": {"weather": {"command": "no-such-binary-xyz"}}}))
    done = run(servers=config)
    assert done.returncode == 2
    assert "no-such-binary-xyz" in _error_line(done) and "not found" in done.stderr


def test_bad_task_file_names_the_line(run: Callable[..., Done], tmp_path: Path) -> None:
    tasks = tmp_path / "tasks.jsonl"
    tasks.write_text('{"id": "a", "prompt": "hi"}\n{"id": "b"}\n')
    done = run(tasks=tasks)
    assert done.returncode == 2 and f"{tasks}:2" in _error_line(done)


def test_task_naming_an_unconfigured_server(run: Callable[..., Done], tmp_path: Path) -> None:
    tasks = tmp_path / "tasks.jsonl"
    tasks.write_text('{"id": "a", "prompt": "hi", "servers": ["nowhere"]}\n')
    done = run(tasks=tasks)
    assert done.returncode == 2 and "nowhere" in _error_line(done)


def test_unknown_reward(run: Callable[..., Done]) -> None:
    done = run("--rewards", "tool_syntax,vibes")
    assert done.returncode == 2 and "vibes" in _error_line(done)


def test_show_bad_trace_file(sandbox_cli: Callable[..., Done], tmp_path: Path) -> None:
    traces = tmp_path / "t.jsonl"
    traces.write_text("{}\n")
    done = sandbox_cli("show", str(traces))
    assert done.returncode == 2 and f"{traces}:1" in _error_line(done)


def test_existing_traces_are_not_overwritten(run: Callable[..., Done], tmp_path: Path) -> None:
    (tmp_path / "t.jsonl").write_text('{"kept": true}\n')
    done = run()
    assert done.returncode == 2 and "--overwrite" in _error_line(done)
    assert (tmp_path / "t.jsonl").read_text() == '{"kept": true}\n'


# Random bytes where text is expected (issue 14): one line naming the file, exit 2, nothing written.
NOISE = bytes([0x89, 0xFF, 0x00, 0x0A]) + random.Random(14).randbytes(4096) + b"\n"


def test_random_bytes_as_the_task_file(run: Callable[..., Done], tmp_path: Path) -> None:
    tasks = tmp_path / "tasks.jsonl"
    tasks.write_bytes(NOISE)
    done = run(tasks=tasks)
    assert done.returncode == 2
    assert _error_line(done) == f"error: task file {tasks} is not UTF-8 text (byte 0, line 1: b'\\x89')"
    assert not (tmp_path / "t.jsonl").exists()


def test_random_bytes_as_the_server_config(run: Callable[..., Done], tmp_path: Path) -> None:
    config = tmp_path / "mcp.json"
    config.write_bytes(NOISE)
    done = run(servers=config)
    assert done.returncode == 2
    assert _error_line(done) == f"error: server config {config} is not UTF-8 text (byte 0, line 1: b'\\x89')"
    assert not (tmp_path / "t.jsonl").exists()


@pytest.mark.parametrize("command", ["score", "show", "view"])
def test_random_bytes_as_a_trace_file(sandbox_cli: Callable[..., Done], tmp_path: Path, command: str) -> None:
    traces = tmp_path / "t.jsonl"
    traces.write_bytes(NOISE)
    out = tmp_path / "out"
    extras = {"score": ["--rewards", "outcome", "-o", str(out)], "show": [], "view": ["--out", str(out)]}
    extra = extras[command]
    done = sandbox_cli(command, str(traces), *extra)
    assert done.returncode == 2
    assert _error_line(done).startswith(f"error: {traces}:1: not a valid trace: Invalid JSON")
    assert not out.exists()


@pytest.mark.parametrize("made", [False, True])
def test_a_truncated_model_leaves_no_run_folder(
    sandbox_cli: Callable[..., Done], tmp_path: Path, made: bool
) -> None:
    """The model loads before the run folder is made (issue 14): nothing to --overwrite afterwards."""
    from sandbox.models import default_model_path

    truncated = tmp_path / "truncated.gguf"
    with default_model_path().open("rb") as handle:
        truncated.write_bytes(handle.read(2_000_000))  # a GGUF header, then the tensors cut off
    out = tmp_path / "run"
    if made:
        out.mkdir()  # an empty folder stays empty
    args = ["--tasks", "seed", "--servers", "servers/mcp.json", "--model", str(truncated), "--n", "1"]
    done = sandbox_cli("generate", *args, "--out", str(out), timeout=120)
    assert done.returncode == 2
    refused = f"Failed to load model from file: {truncated}"
    assert _error_line(done) == f"error: llama.cpp could not load the model {truncated}: {refused}"
    assert (list(out.iterdir()) == []) if made else not out.exists()


def test_a_server_printing_non_json_on_stdout_is_named_in_one_line(
    run: Callable[..., Done], tmp_path: Path
) -> None:
    config = tmp_path / "mcp.json"
    config.write_text(
        json.dumps({"mcpServers": {"weather": {"command": "sh", "args": ["-c", "seq 3301; sleep 60"]}}})
    )
    tasks = tmp_path / "tasks.jsonl"
    tasks.write_text('{"id": "a", "prompt": "hi", "servers": ["weather"]}\n')
    done = run(tasks=tasks, servers=config)
    assert done.returncode == 2
    line = _error_line(done)
    assert line.startswith(
        "error: server 'weather' failed to start: it wrote a line on stdout that is not a JSON-RPC"
    )
    assert "message: '1'" in line and "did not answer" not in line
