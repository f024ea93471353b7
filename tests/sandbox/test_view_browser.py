"""sandbox view in a real browser: headless Chromium opens the report from disk, the test reads the
DOM it dumps and takes a screenshot. Skipped, with the reason, only where Chromium is not installed
(``make test`` installs it when run as root)."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from view_fixtures import NO_FORECAST, mixed_run

from sandbox.records import ToolResult, Trace, read_traces
from sandbox.view import render_report

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (apt-get install chromium; make test does it as root)"
)

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCRIPT = "<script>document.title='pwned'</script>"
IMG = "<img src=x onerror=\"document.title='pwned'\">"


def chromium(tmp_path: Path, url: str, *how: str) -> str:
    done = subprocess.run(
        [str(CHROMIUM), *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", *how, url],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def dump(tmp_path: Path, page: Path, fragment: str = "") -> str:
    return chromium(tmp_path, page.as_uri() + fragment, "--dump-dom")


def write(tmp_path: Path, traces: list[Trace], name: str = "report.html") -> Path:
    page = tmp_path / name
    page.write_text(render_report(traces, title="browser test"), encoding="utf-8")
    return page


def test_overview_shows_tasks_rewards_and_filters(tmp_path: Path) -> None:
    dom = dump(tmp_path, write(tmp_path, mixed_run()))
    assert re.search(r'data-ready-ms="\d+"', dom), "the page's script did not run to its end"
    for task in ("weather-denver-temp-8pm", "calc-percent-of", "no-tool-capital-of-france"):
        assert task in dom
    assert "<th>tool_syntax</th>" in dom
    assert '<b id="validity">40.0%</b>' in dom
    assert 'id="f-failed"' in dom
    assert '<select id="f-stop">' in dom
    # the script drew the trace list: six rows, the failed ones marked
    assert "(6 of 6 match)" in dom
    assert dom.count('<li class="bad">') == 3


def test_trace_page_marks_errors(tmp_path: Path) -> None:
    dom = dump(tmp_path, write(tmp_path, mixed_run()), "#t1")
    assert 'id="overview" hidden' in dom
    assert "result — error (tool_error)" in dom
    assert f'<pre class="err">{NO_FORECAST}</pre>' in dom
    assert '<section class="step failed">' in dom
    assert '<span class="chip">tool_syntax -1.00</span>' in dom
    assert "the tool differs from the ideal one" in dom


def test_best_and_worst_side_by_side(tmp_path: Path) -> None:
    dom = dump(tmp_path, write(tmp_path, mixed_run()), "#c1")
    assert "best vs worst: calc-percent-of" in dom
    assert "<h2>best: calc-percent-of</h2>" in dom
    assert "<h2>worst: calc-percent-of</h2>" in dom
    assert "broken call: tool call is not valid JSON" in dom


def test_a_task_with_one_trace_has_no_pair(tmp_path: Path) -> None:
    dom = dump(tmp_path, write(tmp_path, mixed_run()[:1]), "#c0")
    assert "This task has one trace only." in dom
    assert "<h2>worst: " not in dom
    assert dom.count('<article class="trace">') == 1
    assert "<td>one trace</td>" in dom  # the overview's task table offers no pair


def hostile() -> Trace:
    trace = mixed_run()[1]
    payload = SCRIPT + IMG
    step = trace.steps[0].model_copy(
        update={
            "thought": payload,
            "result": ToolResult(text=payload, is_error=True, error_kind="tool_error"),
        }
    )
    return trace.model_copy(update={"steps": [step], "final_answer": payload, "task_id": "evil" + IMG})


def test_a_trace_cannot_run_script(tmp_path: Path) -> None:
    page = write(tmp_path, [hostile()])
    for fragment in ("", "#t0", "#c0"):
        dom = dump(tmp_path, page, fragment)
        assert "<title>browser test</title>" in dom, fragment
        assert "pwned</title>" not in dom
        assert "<img" not in dom
    escaped = (
        "&lt;script&gt;document.title='pwned'&lt;/script&gt;"
        "&lt;img src=x onerror=\"document.title='pwned'\"&gt;"
    )
    assert f'<pre class="thought">{escaped}</pre>' in dom
    assert f'<pre class="err">{escaped}</pre>' in dom
    assert f'<pre class="ok">{escaped}</pre>' in dom  # the final answer


def test_screenshot(tmp_path: Path) -> None:
    page = write(tmp_path, mixed_run() * 30)
    shot = tmp_path / "overview.png"
    chromium(tmp_path, page.as_uri(), f"--screenshot={shot}", "--window-size=1280,1000")
    data = shot.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert (width, height) == (1280, 1000)
    assert len(data) > 20_000  # a blank or error page compresses to a few kB


@pytest.mark.model
def test_view_a_real_run(
    sandbox_cli: Callable[..., subprocess.CompletedProcess[str]], tmp_path: Path
) -> None:
    out = tmp_path / "run.jsonl"
    done = sandbox_cli(
        "run", "--tasks", "seed", "--servers", "servers/mcp.json", "--out", str(out),
        "--task", "no-tool-capital-of-france", "--max-steps", "2", "--max-tokens", "128",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    viewed = sandbox_cli("view", str(out), "-o", str(tmp_path / "run.html"))
    assert viewed.returncode == 0, viewed.stderr
    (trace,) = read_traces(out)
    dom = dump(tmp_path, tmp_path / "run.html", "#t0")
    assert "no-tool-capital-of-france" in dom
    assert "What is the capital of France?" in dom
    assert f"stop {trace.stop_reason}" in dom
    for name in trace.rewards:
        assert f"<th>{name}</th>" in dom
