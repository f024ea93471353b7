"""``sandbox improve`` end to end: real servers (stdio MCP), the real embedded model, real LoRA training.

Kept cheap for CI: two train and one held-out calculator task, one step per episode of a few
tokens, one training step. What is checked is the loop's plumbing (every stage writes what it
should, --resume redoes nothing finished, bad input is one line); the gain is the benchmark's
(bench/bench_improve.py).
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from sandbox.improve import (
    PLOT_FILE,
    REPORT_FILE,
    STATE_FILE,
    ImproveError,
    ImproveOptions,
    cap_direct,
    family_tasks,
    improve,
)
from sandbox.records import read_tasks, read_traces, write_trace

ROOT = Path(__file__).resolve().parents[2]
SEED = ROOT / "sandbox" / "data" / "seed.jsonl"
TRAIN_IDS = ("calc-pens-word-problem", "no-tool-two-plus-two")
HELDOUT_IDS = ("calc-percent-of",)


def _task_file(path: Path, ids: tuple[str, ...]) -> Path:
    lines = [line for line in SEED.read_text(encoding="utf-8").splitlines() if json.loads(line)["id"] in ids]
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def _options(tmp_path: Path, **changes: object) -> ImproveOptions:
    options = ImproveOptions(
        tasks=_task_file(tmp_path / "train.jsonl", TRAIN_IDS),
        heldout=_task_file(tmp_path / "heldout.jsonl", HELDOUT_IDS),
        out=tmp_path / "improve",
        servers=ROOT / "servers" / "mcp.json",
        n=1,
        max_steps=1,
        max_tokens=24,
        token_budget=48,
        steps=1,
        threads=2,
    )
    return replace(options, **changes)  # type: ignore[arg-type]


@pytest.mark.train
@pytest.mark.model
def test_one_round_runs_end_to_end_and_resume_redoes_nothing(tmp_path: Path) -> None:
    lines: list[str] = []
    result = improve(_options(tmp_path), progress=lines.append)
    out = tmp_path / "improve"
    report = json.loads((out / REPORT_FILE).read_text(encoding="utf-8"))
    assert report == result.report
    assert (out / PLOT_FILE).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / "round-1" / "train" / "adapter.gguf").stat().st_size > 1000
    assert all(view.is_file() and view.stat().st_size > 1000 for view in result.views)
    (round_1,) = report["rounds"]
    # Every train task is covered: by a kept sample, else by the oracle's demonstration.
    selection = round_1["selection"]
    assert selection["tasks_with_kept"] + selection["demos"] == len(TRAIN_IDS)
    kept = read_traces(out / "round-1" / "kept.jsonl")
    assert {t.task_id for t in kept} == set(TRAIN_IDS)
    assert sum(t.model.name == "oracle-demo" for t in kept) == selection["demos"]
    assert round_1["rows"] == len(kept) and round_1["train"]["steps"] == 1
    assert round_1["train"]["tokens_per_second"] > 0
    assert {"outcome", "tool_syntax", "bfcl", "process"} <= set(round_1["heldout"]["rewards"])
    assert set(round_1["seconds"]) == {"sample", "select", "export", "train", "evaluate", "loss"}
    assert report["base"]["heldout_loss"] > 0 and round_1["heldout_loss"] > 0
    # The adapter is on: the held-out demonstrations' loss moved.
    assert round_1["heldout_loss"] != report["base"]["heldout_loss"]
    stages = json.loads((out / STATE_FILE).read_text(encoding="utf-8"))["stages"]

    # A kill after training: the training stage's result is forgotten and its adapter deleted; the
    # stages before it are not run again (their folders would be cleared: a trap to spring).
    state = json.loads((out / STATE_FILE).read_text(encoding="utf-8"))
    for key in ("round-1/train", "round-1/evaluate", "round-1/loss"):
        del state["stages"][key]
    (out / STATE_FILE).write_text(json.dumps(state), encoding="utf-8")
    (out / "round-1" / "train" / "adapter.gguf").unlink()
    samples_before = (out / "round-1" / "samples" / "traces.jsonl").read_bytes()
    lines.clear()
    again = improve(_options(tmp_path, resume=True), progress=lines.append)
    finished = [line.split(":")[0] for line in lines if "finished before" in line]
    assert finished == [
        "base/evaluate",
        "heldout-demos",
        "base/loss",
        "round-1/sample",
        "round-1/select",
        "round-1/export",
    ]
    assert "round-1/train ..." in lines
    assert (out / "round-1" / "samples" / "traces.jsonl").read_bytes() == samples_before
    assert (out / "round-1" / "train" / "adapter.gguf").is_file()
    resumed = json.loads((out / STATE_FILE).read_text(encoding="utf-8"))["stages"]
    assert resumed["round-1/sample"] == stages["round-1/sample"]
    assert again.report["rounds"][0]["heldout"]["rewards"] == round_1["heldout"]["rewards"]

    # Everything finished: a resume runs no stage at all; other settings are refused.
    lines.clear()
    improve(_options(tmp_path, resume=True), progress=lines.append)
    assert lines and all("finished before" in line for line in lines)
    with pytest.raises(ImproveError, match=r"other settings .*threshold"):
        improve(_options(tmp_path, resume=True, threshold=0.5))


def test_bad_input_is_one_error_before_anything_runs(tmp_path: Path) -> None:
    train = _task_file(tmp_path / "train.jsonl", TRAIN_IDS)
    overlap = _task_file(tmp_path / "overlap.jsonl", ("no-tool-two-plus-two", "calc-percent-of"))
    cases = [
        ({"tasks": tmp_path / "missing.jsonl"}, r"--tasks .*missing.jsonl: no such file"),
        ({"heldout": overlap}, r"1 held-out task id\(s\) are also train tasks \(no-tool-two-plus-two\)"),
        ({"rounds": 0}, "--rounds must be at least 1"),
        ({"resume": True, "overwrite": True}, "exclude each other"),
        ({"start_timeout": 0.0}, "--start-timeout must be positive"),
        ({"direct_share": 1.0}, r"--direct-share must be in \[0, 1\)"),
        ({"family": "calculator"}, "--family makes the tasks: leave out --tasks and --heldout"),
        ({"tasks": None}, "pass --tasks and --heldout, or --family"),
        ({"family": "nope", "tasks": None, "heldout": None}, "--family 'nope': unknown family"),
        ({"family": "calculator", "tasks": None, "heldout": None, "train_n": 0}, "--train-n"),
    ]
    for changes, message in cases:
        options = replace(replace(_options(tmp_path), tasks=train), **changes)  # type: ignore[arg-type]
        with pytest.raises(ImproveError, match=message):
            improve(options)
    assert not (tmp_path / "improve").exists()


def test_the_cli_says_what_is_wrong_in_one_line(tmp_path: Path, sandbox_cli) -> None:
    train = _task_file(tmp_path / "train.jsonl", TRAIN_IDS)
    args = ["improve", "--tasks", str(train), "--heldout", str(train), "-o", str(tmp_path / "out")]
    result = sandbox_cli(*args, timeout=300)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "held-out task id(s) are also train tasks" in lines[0], lines


def test_a_folder_of_other_files_or_an_unfinished_choice_is_refused(tmp_path: Path) -> None:
    options = _options(tmp_path)
    options.out.mkdir()
    (options.out / "notes.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(ImproveError, match="holds files but no improve run"):
        improve(options)
    assert (options.out / "notes.txt").read_text(encoding="utf-8") == "mine"
    (options.out / "notes.txt").unlink()
    (options.out / STATE_FILE).write_text('{"options": {}, "stages": {}}', encoding="utf-8")
    with pytest.raises(ImproveError, match="pass --resume to continue it or --overwrite"):
        improve(options)


def test_family_makes_disjoint_splits_into_the_folder_the_same_every_time(tmp_path: Path) -> None:
    options = _options(tmp_path, tasks=None, heldout=None, family="calculator,direct", train_n=3, heldout_n=2)
    made = family_tasks(options)
    assert made.tasks == options.out / "tasks" / "train.jsonl"
    assert made.heldout == options.out / "tasks" / "heldout.jsonl"
    train, heldout = read_tasks(made.tasks), read_tasks(made.heldout)
    assert len(train) == 6 and len(heldout) == 4
    assert {t.id.split("-")[0] for t in train} == {"calculator", "direct"}
    assert not {t.id for t in train} & {t.id for t in heldout}
    first = made.tasks.read_bytes()
    family_tasks(options)
    assert made.tasks.read_bytes() == first  # a --resume sees the same files (the fingerprint holds)


def test_the_cli_family_path_refuses_an_unknown_family_in_one_line(tmp_path: Path, sandbox_cli) -> None:
    result = sandbox_cli("improve", "--family", "weather,nope", "-o", str(tmp_path / "out"), timeout=300)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "unknown family" in lines[0], lines


def test_the_direct_cap_keeps_tool_traces_and_the_earliest_direct_ones(tmp_path: Path) -> None:
    tasks = {t.id: t for t in read_tasks(_task_file(tmp_path / "t.jsonl", TRAIN_IDS))}
    tool, direct = TRAIN_IDS  # calc-pens-word-problem has calls; no-tool-two-plus-two has none
    order = [direct, tool, direct, tool, direct, direct]
    traces: list[Any] = [SimpleNamespace(task_id=i) for i in order]
    kept, dropped = cap_direct(traces, tasks, 0.5)
    assert dropped == 2 and kept == traces[:4]
    assert cap_direct(traces, tasks, None) == (traces, 0)
    kept, dropped = cap_direct(traces, tasks, 0.0)
    assert dropped == 4 and {t.task_id for t in kept} == {tool}


def test_a_later_rounds_traces_reach_the_export_beside_the_earlier_ones(tmp_path: Path) -> None:
    """Two rounds' demonstrations of the same tasks carry the same (task, sample): numbered apart,
    every one of them becomes a training row (kept as written, the export drops the second round's
    as repeats, so round 2 trained on round 1's data alone)."""
    import anyio

    from sandbox.datasets import ExportOptions, export_run
    from sandbox.improve._loop import distinct_samples
    from sandbox.runs import TRACES_FILE, RunSpec, write_demos

    task_file = _task_file(tmp_path / "t.jsonl", TRAIN_IDS)
    for name, limit in (("one", 8192), ("two", 256)):  # the shorter limit's thoughts differ
        spec = RunSpec(
            tasks=task_file, servers=ROOT / "servers" / "mcp.json", out=tmp_path / name, max_tokens=limit
        )
        anyio.run(write_demos, spec)
    traces = [*read_traces(tmp_path / "one" / TRACES_FILE), *read_traces(tmp_path / "two" / TRACES_FILE)]
    assert len({(t.task_id, t.sample) for t in traces}) == len(TRAIN_IDS)  # the clash

    def rows(kept: list[Any], out: str) -> int:
        with (tmp_path / f"{out}.jsonl").open("w", encoding="utf-8") as handle:
            for trace in kept:
                write_trace(handle, trace)
        options = ExportOptions(
            source=tmp_path / f"{out}.jsonl", format="sft", out=tmp_path / out, min_reward=None
        )
        return export_run(options).rows.get("train", 0)

    assert rows(traces, "as-written") == len(TRAIN_IDS)
    numbered = distinct_samples(traces)
    assert rows(numbered, "numbered") == 2 * len(TRAIN_IDS)
    assert [t.id for t in numbered] == [t.id for t in traces]
    assert sorted((t.task_id, t.sample) for t in numbered) == sorted(
        (i, n) for i in TRAIN_IDS for n in (0, 1)
    )


def test_resume_counts_an_option_added_since_the_run_started_as_its_default(tmp_path: Path) -> None:
    from sandbox.improve._loop import _fingerprint

    options = _options(tmp_path)
    older = {k: v for k, v in _fingerprint(options).items() if k not in ("direct_share", "family")}
    options.out.mkdir()
    (options.out / STATE_FILE).write_text(json.dumps({"options": older, "stages": {}}), encoding="utf-8")
    # Only the setting really changed is named: the options the old state lacks are at their default.
    with pytest.raises(ImproveError, match=r"other settings \(threshold\)"):
        improve(replace(options, resume=True, threshold=0.5))
    with pytest.raises(ImproveError, match=r"other settings \(direct_share\)"):
        improve(replace(options, resume=True, direct_share=0.2))


# --------------------------------------------------------------------------- the turn format

TEMPLATES = ROOT / "tests" / "fixtures" / "templates"


def _family_gguf(path: Path, family: str) -> Path:
    from sandbox.models import default_model_path, write_chat_template

    return write_chat_template(default_model_path(), path, (TEMPLATES / f"{family}.jinja").read_text())


def test_the_format_is_chosen_once_recorded_and_a_resume_in_another_is_refused(tmp_path: Path) -> None:
    from sandbox.improve._loop import _open_folder, improve_format

    model = _family_gguf(tmp_path / "m.gguf", "hermes")
    options = _options(tmp_path, model=model)
    fmt = improve_format(options)
    assert fmt.label == "hermes"  # auto: the template's tools branch
    assert improve_format(replace(options, turn_format="tags")).label == "tags"
    assert improve_format(_options(tmp_path)).label == "tags"  # the embedded model's template has none
    descriptor, state = _open_folder(options, fmt)
    os.close(descriptor)
    assert state["format"] == "hermes"
    assert json.loads((options.out / STATE_FILE).read_text(encoding="utf-8"))["format"] == "hermes"
    with pytest.raises(ImproveError, match=r"other settings \(turn_format\)"):
        improve(replace(options, resume=True, turn_format="tags"))
    # The same options, but the model's template now says Llama 3: the run would change format.
    _family_gguf(model, "llama3")
    with pytest.raises(ImproveError, match="started in the turn format hermes, and these options run llama3"):
        improve(replace(options, resume=True))
    (tmp_path / "other").mkdir()
    for changes, says in (
        ({"turn_format": "native", "model": None}, "no tools branch"),
        ({"turn_format": "json"}, "--format must be one of"),
    ):
        with pytest.raises(ImproveError, match=says):
            improve(replace(_options(tmp_path / "other"), **changes))  # type: ignore[arg-type]
        assert not (tmp_path / "other" / "improve").exists()


class _Cli:
    """``python -m sandbox ARGS`` in its own session (SIGINT reaches the servers too, as from a
    terminal), its stderr lines collected as they come."""

    def __init__(self, args: list[str]) -> None:
        self.lines: list[str] = []
        self.process = subprocess.Popen(
            args,
            cwd=ROOT,
            env={**os.environ, "PYTHONWARNINGS": "ignore"},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line.rstrip("\n"))

    def ctrl_c_when(self, ready: Callable[[], bool], *, after: float = 0.0) -> int:
        deadline = time.monotonic() + 900
        while not ready():
            assert self.process.poll() is None, "\n".join(self.lines[-30:])
            assert time.monotonic() < deadline, "not ready in 900 s"
            time.sleep(0.05)
        time.sleep(after)
        assert self.process.poll() is None, "it ended before the signal"
        os.killpg(self.process.pid, signal.SIGINT)
        return self.wait()

    def wait(self) -> int:
        code = self.process.wait(timeout=900)
        self._reader.join(timeout=30)
        return code

    def resume_command(self) -> list[str]:
        line = next(line for line in self.lines if line.startswith("interrupted:"))
        return shlex.split(line.split("resume with: ", 1)[1])


def _stages(out: Path) -> dict[str, Any]:
    return json.loads((out / STATE_FILE).read_text(encoding="utf-8"))["stages"]


@pytest.mark.train
@pytest.mark.model
def test_a_native_format_runs_through_every_stage(tmp_path: Path) -> None:
    """Under a Hermes template every stage runs in the Hermes format: the base and tuned evaluations,
    the oracle's demonstrations, the kept traces, and the export that is trained on."""
    model = _family_gguf(tmp_path / "hermes.gguf", "hermes")
    options = _options(tmp_path, model=model, chat_template=TEMPLATES / "hermes-train.jinja")
    result = improve(options)
    out = options.out
    assert result.report["format"] == "hermes" and result.report["options"]["turn_format"] == "auto"
    folders = [out / "base" / "heldout", out / "heldout-demos", out / "round-1" / "samples"]
    folders += [out / "round-1" / "heldout"] + (
        [out / "round-1" / "demos"] if (out / "round-1" / "demos").exists() else []
    )
    for folder in folders:
        traces = read_traces(folder / "traces.jsonl")
        assert traces and {t.format for t in traces} == {"hermes"}, folder
    demos = read_traces(out / "heldout-demos" / "traces.jsonl")
    calls = [m for t in demos for m in t.messages if m.role == "assistant" and "<tool_call>" in m.content]
    assert calls and all("<think>" not in m.content and "<answer>" not in m.content for m in calls)
    assert all("<answer>" not in m.content for t in demos for m in t.messages if m.role == "assistant")
    rows = [json.loads(line) for line in (out / "round-1" / "data" / "train.jsonl").read_text().splitlines()]
    assert rows and all(m.get("tool_calls") is None for row in rows for m in row["messages"])
    assert all(row["tools"] for row in rows)  # the template lists the tools, from the tools column
    assert "calculate" not in rows[0]["messages"][0]["content"]
    assert result.report["rounds"][0]["train"]["steps"] == 1
    assert result.report["base"]["heldout_loss"] > 0  # the demonstrations scored with the template's tools


def test_ctrl_c_stops_each_kind_of_stage_and_resume_trains_on_from_the_checkpoint(tmp_path: Path) -> None:
    options = _options(tmp_path)
    out = options.out
    args = [
        sys.executable, "-m", "sandbox", "improve", "--tasks", str(options.tasks), "--heldout",
        str(options.heldout), "-o", str(out), "--servers", str(options.servers), "--n", "1",
        "--max-steps", "1", "--max-tokens", "24", "--token-budget", "48", "--threads", "2",
        "--steps", "3", "--save-steps", "1",
    ]  # fmt: skip

    # A Ctrl-C while the base model runs the held-out episodes: exit 130 and the resume command.
    first = _Cli(args)
    assert first.ctrl_c_when(lambda: "base/evaluate ..." in first.lines, after=2.0) == 130, first.lines
    assert any("stopping at Ctrl-C" in line for line in first.lines), first.lines
    resume = first.resume_command()
    assert resume == [*args, "--resume"]
    assert "base/evaluate" not in _stages(out)

    # Resumed, and stopped again in training once its first checkpoint is written.
    checkpoints = out / "round-1" / "train" / "checkpoints"
    second = _Cli(resume)
    assert second.ctrl_c_when(lambda: (checkpoints / "step-1").is_dir()) == 130, second.lines
    assert second.resume_command() == resume
    stages = _stages(out)
    assert "round-1/export" in stages and "round-1/train" not in stages
    newest = max(int(path.name.split("-")[1]) for path in checkpoints.iterdir())
    assert 1 <= newest < 3  # the Ctrl-C stopped training after the step under way

    # The last resume keeps every finished stage and trains on from that checkpoint to step 3.
    third = _Cli(resume)
    assert third.wait() == 0, third.lines[-30:]
    finished = [line.split(":")[0] for line in third.lines if "finished before" in line]
    assert finished[:4] == ["base/evaluate", "heldout-demos", "base/loss", "round-1/sample"]
    assert f"round-1/train: resuming from {checkpoints / f'step-{newest}'} (step {newest})" in third.lines
    trained = _stages(out)["round-1/train"]
    assert trained["resumed_from"] == newest and trained["steps"] == 3
    metrics = (out / "round-1" / "train" / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["step"] for line in metrics] == [1, 2, 3]
    assert json.loads((out / REPORT_FILE).read_text(encoding="utf-8"))["rounds"][0]["train"]["steps"] == 3
