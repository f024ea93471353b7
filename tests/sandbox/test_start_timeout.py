"""``--start-timeout`` reaches the hub: a real stdio server given too little time to start is
reported in one line naming the limit (``RunSpec.start_timeout`` -> ``ToolHub``)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_a_start_timeout_too_short_for_the_server_is_one_line(tmp_path: Path, sandbox_cli) -> None:
    args = [
        "run",
        "--tasks",
        "seed",
        "--servers",
        str(ROOT / "servers" / "mcp.json"),
        "--out",
        str(tmp_path / "t.jsonl"),
        "--task",
        "calc-percent-of",
        "--start-timeout",
        "0.001",
    ]
    result = sandbox_cli(*args, timeout=300)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "did not answer within 0 s" in lines[0], lines
