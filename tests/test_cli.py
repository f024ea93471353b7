"""Bad input gets a one-line error and exit code 2, before any model or server starts."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def sandbox(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sandbox", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _error_line(done: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    return lines[0]


def test_missing_model_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.gguf"
    done = sandbox(
        "run",
        "--tasks",
        "seed",
        "--servers",
        "servers/mcp.json",
        "--out",
        str(tmp_path / "t.jsonl"),
        "--model",
        str(missing),
    )
    assert done.returncode == 2
    assert _error_line(done) == f"error: model file not found: {missing}"


def test_model_file_that_is_not_gguf(tmp_path: Path) -> None:
    fake = tmp_path / "fake.gguf"
    fake.write_bytes(b"not a model")
    done = sandbox(
        "run",
        "--tasks",
        "seed",
        "--servers",
        "servers/mcp.json",
        "--out",
        str(tmp_path / "t.jsonl"),
        "--model",
        str(fake),
    )
    assert done.returncode == 2 and str(fake) in _error_line(done) and "not GGUF" in done.stderr


def test_missing_server_command(tmp_path: Path) -> None:
    config = tmp_path / "mcp.json"
    config.write_text(json.dumps({"mcpServers": {"weather": {"command": "no-such-binary-xyz"}}}))
    done = sandbox("run", "--tasks", "seed", "--servers", str(config), "--out", str(tmp_path / "t.jsonl"))
    assert done.returncode == 2
    assert "no-such-binary-xyz" in _error_line(done) and "not found" in done.stderr


def test_bad_task_file_names_the_line(tmp_path: Path) -> None:
    tasks = tmp_path / "tasks.jsonl"
    tasks.write_text('{"id": "a", "prompt": "hi"}\n{"id": "b"}\n')
    done = sandbox(
        "run", "--tasks", str(tasks), "--servers", "servers/mcp.json", "--out", str(tmp_path / "t.jsonl")
    )
    assert done.returncode == 2 and f"{tasks}:2" in _error_line(done)


def test_task_naming_an_unconfigured_server(tmp_path: Path) -> None:
    tasks = tmp_path / "tasks.jsonl"
    tasks.write_text('{"id": "a", "prompt": "hi", "servers": ["nowhere"]}\n')
    done = sandbox(
        "run", "--tasks", str(tasks), "--servers", "servers/mcp.json", "--out", str(tmp_path / "t.jsonl")
    )
    assert done.returncode == 2 and "nowhere" in _error_line(done)


def test_unknown_reward(tmp_path: Path) -> None:
    done = sandbox(
        "run",
        "--tasks",
        "seed",
        "--servers",
        "servers/mcp.json",
        "--out",
        str(tmp_path / "t.jsonl"),
        "--rewards",
        "tool_syntax,vibes",
    )
    assert done.returncode == 2 and "vibes" in _error_line(done)


def test_show_bad_trace_file(tmp_path: Path) -> None:
    traces = tmp_path / "t.jsonl"
    traces.write_text("{}\n")
    done = sandbox("show", str(traces))
    assert done.returncode == 2 and f"{traces}:1" in _error_line(done)
