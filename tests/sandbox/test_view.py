"""sandbox view without a browser: what the page holds, the overview's figures, and escaping."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from view_fixtures import FORECAST, answer_step, call_step, make_trace, mixed_run

from sandbox.records import SandboxError, ToolResult, Trace, total_reward, write_trace
from sandbox.view import load_traces, render_report, reward_stats, write_report


class Page(HTMLParser):
    """The page's elements as the browser's parser would see them: tags, attributes, script bodies."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.scripts: list[tuple[dict[str, str | None], str]] = []
        self.text: list[str] = []
        self._script: dict[str, str | None] | None = None
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag == "script":
            self._script = dict(attrs)
            self.scripts.append((self._script, ""))

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._script = None

    def handle_data(self, data: str) -> None:
        if self._script is not None:
            attrs, body = self.scripts[-1]
            self.scripts[-1] = (attrs, body + data)
        else:
            self.text.append(data)

    def data(self, element_id: str) -> object:
        body = next(body for attrs, body in self.scripts if attrs.get("id") == element_id)
        return json.loads(body)


def _write(path: Path, traces: list[Trace]) -> Path:
    with path.open("w", encoding="utf-8") as handle:
        for trace in traces:
            write_trace(handle, trace)
    return path


def test_total_reward_sums_scored_values_or_takes_the_named_one() -> None:
    trace = make_trace("calc-percent-of", [answer_step(0, "40")], outcome=0.0, tool_syntax=-0.5)
    assert total_reward(trace) == -0.5
    assert total_reward(trace, "outcome") == 0.0
    unscored = make_trace("calc-percent-of", [], outcome=None, tool_syntax=None)
    assert total_reward(unscored) is None
    assert total_reward(unscored, "outcome") is None


def test_overview_counts_validity_stops_and_rewards() -> None:
    page = Page(render_report(mixed_run()))
    text = " ".join(page.text)
    # 5 tool-using steps; valid: the good call and the one with a tool error. Not valid: a broken
    # call, an unknown tool, a call missing a required argument.
    assert "40.0%" in text
    assert "(2 of 5 tool-using steps valid)" in text
    index = page.data("index")
    assert isinstance(index, dict)
    assert index["tasks"] == ["weather-denver-temp-8pm", "calc-percent-of", "no-tool-capital-of-france"]
    assert index["stops"] == ["answer", "max_steps"]
    failed = [row[4] for row in index["rows"]]
    assert failed == [False, True, True, False, True, False]
    totals = [row[2] for row in index["rows"]]
    assert totals == [1.8, -1.0, -2.0, -0.5, 0.0, 0.0]
    # best and worst sample of each task, by total reward
    assert index["pairs"] == {"0": [0, 1], "1": [3, 2], "2": [5, 4]}


def test_trace_detail_holds_steps_errors_and_rewards() -> None:
    page = Page(render_report(mixed_run()))
    second = page.data("d1")
    assert isinstance(second, dict)
    (step,) = second["steps"]
    assert step["result"]["error"] == "tool_error"
    assert step["call"]["name"] == "get_daily_forecast"
    assert json.loads(step["call"]["arguments"]) == {"location": "Denver", "date": "2022-01-01"}
    assert step["rewards"] == {"tool_syntax": -1.0}
    reasons = {r["name"]: r["reason"] for r in second["rewards"]}
    assert reasons["tool_syntax"] == "the tool differs from the ideal one"
    third = page.data("d2")
    assert isinstance(third, dict)
    assert third["steps"][0]["parse_error"].startswith("tool call is not valid JSON")
    assert third["steps"][1]["invalid"] == "unknown tool 'get_weather'"
    fifth = page.data("d4")
    assert isinstance(fifth, dict)
    assert "'date' is a required property" in fifth["steps"][0]["invalid"]


def test_reward_option_ranks_by_one_reward_and_rejects_an_unknown_one() -> None:
    index = Page(render_report(mixed_run(), reward="tool_syntax")).data("index")
    assert isinstance(index, dict)
    assert [row[2] for row in index["rows"]] == [0.8, -1.0, -2.0, -0.5, None, -1.0]
    with pytest.raises(SandboxError, match="no trace has it"):
        render_report(mixed_run(), reward="nope")


def test_reward_stats_histogram() -> None:
    stats = reward_stats("r", [0.0, 0.5, 1.0, None, 1.0], bins=4)
    assert (stats.scored, stats.unscored, stats.low, stats.high) == (4, 1, 0.0, 1.0)
    assert stats.counts == (1, 0, 1, 2)
    assert stats.mean == 0.625
    assert reward_stats("r", [None]).counts == ()


PAYLOADS = [
    "<script>document.title='pwned'</script>",
    "<img src=x onerror=\"document.title='pwned'\">",
    "</script><script>document.title='pwned'</script>",
    "<!--<script>",
    "\u2028&lt;b&gt; & \"quotes\" 'single'",
]


def _hostile(text: str) -> Trace:
    result = ToolResult(text=text, is_error=True, error_kind="tool_error")
    trace = make_trace(
        "weather-denver-temp-8pm",
        [call_step(0, {"location": text, "date": "today"}, result, thought=text), answer_step(1, text, text)],
        final=text,
    )
    task = trace.task.model_copy(update={"id": text, "prompt": text, "system": text})
    return trace.model_copy(update={"task_id": text, "task": task, "id": text})


def _assert_inert(html_text: str, text: str) -> None:
    page = Page(html_text)
    assert [tag for tag, _ in page.tags].count("script") == 2 + 1  # index, one trace, the page's script
    assert not [tag for tag, _ in page.tags if tag == "img"]
    for _, attrs in page.tags:
        assert not [name for name in attrs if name.startswith("on")]
    code = [body for attrs, body in page.scripts if "type" not in attrs]
    assert len(code) == 1
    assert "pwned" not in code[0]
    detail = page.data("d0")
    assert isinstance(detail, dict)
    assert detail["steps"][0]["thought"] == text
    assert detail["steps"][0]["result"]["text"] == text
    assert detail["final"] == text
    assert detail["task"] == text


@pytest.mark.parametrize("payload", PAYLOADS)
def test_model_and_tool_text_cannot_inject_markup(payload: str) -> None:
    _assert_inert(render_report([_hostile(payload)]), payload)


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("<>/&\"'=!- scriptimgonerror\u2028\n")), max_size=60))
def test_any_text_stays_data(text: str) -> None:
    _assert_inert(render_report([_hostile(text)]), text)


def test_run_directory_reads_every_trace_file_and_skips_others(tmp_path: Path) -> None:
    traces = mixed_run()
    _write(tmp_path / "a.jsonl", traces[:2])
    _write(tmp_path / "b.jsonl", traces[2:])
    (tmp_path / "losses.jsonl").write_text('{"trace_id": "x", "loss": 1.2}\n', encoding="utf-8")
    loaded = load_traces(tmp_path)
    assert [t.id for t in loaded.traces] == [t.id for t in traces]
    assert loaded.skipped == ["losses.jsonl: not a trace file"]
    report = write_report(tmp_path)
    assert report.path == tmp_path / "report.html"
    assert (report.traces, report.tasks) == (6, 3)


def test_empty_inputs_are_a_person_s_error(tmp_path: Path) -> None:
    with pytest.raises(SandboxError, match="no trace files"):
        load_traces(tmp_path)
    (tmp_path / "empty.jsonl").write_text("", encoding="utf-8")
    with pytest.raises(SandboxError, match="no traces in file"):
        load_traces(tmp_path / "empty.jsonl")


def test_cli_view(sandbox_cli: Callable[..., subprocess.CompletedProcess[str]], tmp_path: Path) -> None:
    source = _write(tmp_path / "run.jsonl", mixed_run())
    done = sandbox_cli("view", str(source), timeout=120)
    assert done.returncode == 0, done.stderr
    assert "6 traces, 3 tasks" in done.stdout
    page = Page((tmp_path / "run.html").read_text(encoding="utf-8"))
    first = page.data("d0")
    assert isinstance(first, dict)
    assert first["steps"][0]["result"]["text"] == FORECAST
    bad = sandbox_cli("view", str(source), "--reward", "nope", timeout=120)
    assert bad.returncode == 2
    assert bad.stderr.strip().startswith("error: --reward 'nope': no trace has it")
