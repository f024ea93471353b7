"""``sandbox generate``: n scored samples per task into a run folder that survives kill -9 and resumes.

Unit tests drive the real run (real ToolHub, stdio weather server, real rewards, real files) with a
scripted model; the kill test runs the real model through the command line and kills it mid-run."""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path

import anyio
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sandbox.models import ModelRequest, ScriptedModel, file_sha256
from sandbox.records import ConfigError, StateCheck, Task, cut_partial_tail, partial_tail, read_traces
from sandbox.runs import CONFIG_FILE, TRACES_FILE, RunConfig, derive_seed, generate, select_rewards
from tests.sandbox.run_fixtures import (
    NO_SERVER_TASKS,
    REWARDS,
    ROOT,
    TASKS,
    options,
    scripted_model,
    scripted_turn,
)


def _pairs(run: Path) -> list[tuple[str, int]]:
    return [(t.task_id, t.sample) for t in read_traces(run / TRACES_FILE)]


# --------------------------------------------------------------------------- seeds


def test_sample_seeds_are_stable_and_distinct() -> None:
    # A fixed value: a resumed run, another process or another machine must derive the same seed.
    assert derive_seed(0, "temp-8pm", 0) == derive_seed(0, "temp-8pm", 0) == 1363529126
    seeds = {derive_seed(7, task, sample) for task in ("a", "b", "c") for sample in range(50)}
    assert len(seeds) == 150


@given(st.integers(0, 2**63), st.text(max_size=40), st.integers(0, 10**6))
def test_sample_seeds_fit_llama_cpp_with_room_for_the_steps(run_seed: int, task_id: str, sample: int) -> None:
    seed = derive_seed(run_seed, task_id, sample)
    assert 0 <= seed < 2**31  # run_episode adds the step index; llama.cpp takes a uint32


# --------------------------------------------------------------------------- a run


@pytest.mark.anyio
async def test_a_run_writes_its_config_and_n_scored_samples_of_every_task(tmp_path: Path) -> None:
    run_options = options(tmp_path, parallel=3)
    summary = await generate(run_options, model=scripted_model())
    run = run_options.out
    assert sorted(p.name for p in run.iterdir()) == [CONFIG_FILE, TRACES_FILE]
    config = RunConfig.model_validate_json((run / CONFIG_FILE).read_bytes())
    assert config.n == 4 and config.sampling.temperature == 0.8 and config.sampling.seed == 0
    assert config.tasks.sha256 == file_sha256(run_options.tasks)
    assert config.task_ids == [t.id for t in TASKS]
    declared = {name: reward.version for name, reward in select_rewards(REWARDS).items()}  # type: ignore[attr-defined]
    assert config.rewards == declared and set(declared) == {"outcome", "tool_syntax", "bfcl"}
    assert all(version.isdigit() for version in declared.values())
    assert list(config.servers) == ["weather"] and config.code_version
    traces = read_traces(run / TRACES_FILE)
    assert Counter(t.task_id for t in traces) == {t.id: 4 for t in TASKS}
    assert len({(t.task_id, t.sample) for t in traces}) == 12
    for trace in traces:
        assert trace.sampling.seed == derive_seed(0, trace.task_id, trace.sample)
        assert set(trace.rewards) == {"outcome", "tool_syntax", "bfcl"}
        assert trace.stop_reason == "answer"
    called = [t for t in traces if t.steps[0].action == "tool_call"]
    assert called and all(not t.steps[0].result.is_error for t in called if t.steps[0].result)  # real server
    outcomes = {t.rewards["outcome"].value for t in traces}
    assert outcomes == {0.0, 1.0}  # the samples of the run differ, as sampled ones do
    assert summary.written == summary.total == summary.expected == 12 and summary.before == 0
    means = summary.rewards.means()
    assert means["outcome"] == pytest.approx(sum(t.rewards["outcome"].value or 0 for t in traces) / 12)


@pytest.mark.anyio
async def test_episodes_run_concurrently_and_never_more_than_parallel(tmp_path: Path) -> None:
    parallel = 3
    barrier = threading.Barrier(parallel, timeout=60)  # broken unless 3 turns are in flight at once
    lock = threading.Lock()
    in_flight, most = 0, 0

    def turn(request: ModelRequest) -> str:
        nonlocal in_flight, most
        with lock:
            in_flight += 1
            most = max(most, in_flight)
        try:
            barrier.wait()  # 12 one-turn episodes on 3 workers: four rounds of three
            return scripted_turn(request)
        finally:
            with lock:
                in_flight -= 1

    run_options = options(tmp_path, NO_SERVER_TASKS, n=6, parallel=parallel)
    await generate(run_options, model=ScriptedModel(turn))
    traces = read_traces(run_options.out / TRACES_FILE)
    assert len(traces) == 12 and all(t.stop_reason == "answer" for t in traces)
    assert most == parallel


@pytest.mark.anyio
async def test_resume_runs_only_missing_pairs_and_keeps_a_half_written_line(tmp_path: Path) -> None:
    run_options = options(tmp_path, NO_SERVER_TASKS)
    await generate(run_options, model=scripted_model())
    traces_file = run_options.out / TRACES_FILE
    lines = traces_file.read_bytes().splitlines(keepends=True)
    kept, cut = lines[:3], lines[3][:200]  # as if killed while writing the fourth line
    traces_file.write_bytes(b"".join(kept) + cut)
    config_before = (run_options.out / CONFIG_FILE).read_bytes()

    model = scripted_model()
    summary = await generate(replace(run_options, resume=True, parallel=2), model=model)

    side = run_options.out / f"{TRACES_FILE}.partial-1"
    assert side.read_bytes() == cut
    assert traces_file.read_bytes().startswith(b"".join(kept))
    pairs = _pairs(run_options.out)
    assert sorted(pairs) == sorted((t.id, s) for t in NO_SERVER_TASKS for s in range(4))
    assert len(model.requests) == 8 - 3  # one turn per missing episode: the written ones did not run again
    assert summary.before == 3 and summary.written == 5 and summary.total == 8
    assert any("half-written" in note for note in summary.notes)
    assert (run_options.out / CONFIG_FILE).read_bytes() == config_before

    again = scripted_model()
    summary = await generate(replace(run_options, resume=True), model=again)
    assert again.requests == [] and summary.written == 0 and summary.total == 8


@pytest.mark.anyio
async def test_resume_refuses_other_settings_naming_each_field(tmp_path: Path) -> None:
    run_options = options(tmp_path, NO_SERVER_TASKS, n=1)
    await generate(run_options, model=scripted_model())
    changed = replace(run_options, resume=True, temperature=0.5, n=2, max_steps=3)
    with pytest.raises(ConfigError) as error:
        await generate(changed, model=scripted_model())
    message = str(error.value)
    assert "sampling.temperature (0.8 -> 0.5)" in message and "n (1 -> 2)" in message
    assert "max_steps (6 -> 3)" in message and "\n" not in message
    original = run_options.tasks.read_text()
    extra = NO_SERVER_TASKS[0].model_copy(update={"id": "new"})
    run_options.tasks.write_text(original + extra.model_dump_json() + "\n")
    with pytest.raises(ConfigError, match=r"task_ids .*; tasks\.sha256"):
        await generate(replace(run_options, resume=True), model=scripted_model())
    # What does not change a trace may change: the number of episodes at once.
    run_options.tasks.write_text(original)
    await generate(replace(run_options, resume=True, parallel=4), model=scripted_model())


@pytest.mark.anyio
async def test_a_folder_that_holds_a_run_is_never_replaced_by_accident(tmp_path: Path) -> None:
    run_options = options(tmp_path, NO_SERVER_TASKS, n=1)
    await generate(run_options, model=scripted_model())
    with pytest.raises(ConfigError, match=r"not empty; pass --resume .* --overwrite"):
        await generate(run_options, model=scripted_model())
    with pytest.raises(ConfigError, match="exclude each other"):
        await generate(replace(run_options, resume=True, overwrite=True), model=scripted_model())
    held = os.open(run_options.out, os.O_RDONLY)  # as a second process running the same folder would
    fcntl.flock(held, fcntl.LOCK_EX)
    try:
        with pytest.raises(ConfigError, match="another sandbox generate is writing to"):
            await generate(replace(run_options, resume=True), model=scripted_model())
    finally:
        os.close(held)
    (run_options.out / f"{TRACES_FILE}.partial-1").write_bytes(b'{"half')
    await generate(replace(run_options, overwrite=True, n=2), model=scripted_model())
    assert len(_pairs(run_options.out)) == 4
    assert sorted(p.name for p in run_options.out.iterdir()) == [CONFIG_FILE, TRACES_FILE]


def test_bad_settings_stop_before_anything_starts(tmp_path: Path) -> None:
    for change, expected in (
        ({"n": 0}, "--n must be at least 1"),
        ({"parallel": 0}, "--parallel"),
        ({"n_ctx": 16, "parallel": 2}, "--n-ctx must be at least 32"),
        ({"rewards": "outcome,nope"}, "unknown reward"),
        ({"threads": 0}, "--threads must be at least 1"),
    ):
        run_options = options(tmp_path, NO_SERVER_TASKS, **change)
        with pytest.raises(Exception, match=expected):
            anyio.run(lambda o=run_options: generate(o, model=scripted_model()))
        assert not run_options.out.exists()


# --------------------------------------------------------------------------- the trace file


@given(
    st.lists(st.binary(min_size=1, max_size=30).map(lambda b: b.replace(b"\n", b"x") + b"\n"), max_size=6),
    st.binary(max_size=30).map(lambda b: b.replace(b"\n", b"y")),
)
def test_cutting_a_half_written_line_keeps_every_byte(lines: list[bytes], tail: bytes) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / TRACES_FILE
        path.write_bytes(b"".join(lines) + tail)
        assert partial_tail(path) == len(tail)
        side = cut_partial_tail(path)
        assert path.read_bytes() == b"".join(lines)
        if tail:
            assert side is not None and side.read_bytes() == tail
            path.write_bytes(path.read_bytes() + b"more")
            assert cut_partial_tail(path) == path.with_name(f"{TRACES_FILE}.partial-2")
        else:
            assert side is None


# --------------------------------------------------------------------------- the command line, real model


def _start(args: list[str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "sandbox", "generate", *args],
        cwd=ROOT,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _complete_lines(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


@pytest.mark.model
def test_kill_9_mid_run_then_resume_ends_with_every_sample_once(tmp_path: Path) -> None:
    tasks = tmp_path / "tasks.jsonl"
    seed = {
        json.loads(line)["id"]: line for line in (ROOT / "sandbox/data/seed.jsonl").read_text().splitlines()
    }
    picked = ["no-tool-two-plus-two", "weather-denver-temp-8pm", "calc-percent-of"]
    tasks.write_text("".join(seed[task] + "\n" for task in picked))
    run = tmp_path / "run"
    args = ["--tasks", str(tasks), "--servers", "servers/mcp.json", "--out", str(run), "--n", "3"]
    short = ["--max-steps", "2", "--max-tokens", "24", "--n-ctx", "2048", "--rewards", "outcome,tool_syntax"]

    first = _start([*args, *short, "--parallel", "2"])
    deadline = time.monotonic() + 600
    while _complete_lines(run / TRACES_FILE) < 1 and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert first.poll() is None, f"the run ended before it could be killed: {first.communicate()[1][-2000:]}"
    first.send_signal(signal.SIGKILL)
    first.communicate(timeout=60)
    written = (run / TRACES_FILE).read_bytes()
    complete = written[: written.rfind(b"\n") + 1]
    assert 1 <= complete.count(b"\n") < 9

    second = _start([*args, *short, "--resume"])
    stdout, stderr = second.communicate(timeout=900)
    assert second.returncode == 0, stderr[-3000:]
    assert "9/9" in stdout
    final = (run / TRACES_FILE).read_bytes()
    assert final.startswith(complete)  # what was written before the kill is kept as it was
    pairs = _pairs(run)
    assert sorted(pairs) == sorted((task, sample) for task in picked for sample in range(3))
    partial = written[len(complete) :]
    if partial:
        assert (run / f"{TRACES_FILE}.partial-1").read_bytes() == partial
    for trace in read_traces(run / TRACES_FILE):
        assert trace.sampling.seed == derive_seed(0, trace.task_id, trace.sample)
        assert trace.sampling.temperature == 0.8 and trace.steps


@pytest.mark.anyio
async def test_concurrent_samples_of_a_stateful_server_keep_their_own_state(tmp_path: Path) -> None:
    """Three samples play three songs at once, then each asks what is playing: each hears its own."""
    tracks = ["lib-009", "lib-010", "lib-011"]
    names = {"lib-009": "Riptide", "lib-010": "Flowers", "lib-011": "Ghost"}
    played: dict[int, str] = {}
    lock = threading.Lock()
    all_played = threading.Barrier(3, timeout=60)

    def turn(request: ModelRequest) -> str:
        step = sum(1 for m in request.messages if m.role == "assistant")
        seed = request.sampling.seed - step
        if step == 0:
            with lock:
                played[seed] = tracks[len(played)]
            call = {"name": "play", "arguments": {"track_id": played[seed]}}
            return f"<tool_call>\n{json.dumps(call)}\n</tool_call>"
        if step == 1:
            all_played.wait()  # every episode has played its song before any asks
            return '<tool_call>\n{"name": "now_playing", "arguments": {}}\n</tool_call>'
        return "<answer>done</answer>"

    task = Task(
        id="play",
        prompt="Play something and tell me what is playing.",
        servers=["music"],
        expected_state=[
            StateCheck(server="music", resource="music://state", path="now_playing", op="exists")
        ],
    )
    run_options = options(tmp_path, [task], n=3, parallel=3, rewards="tool_syntax")
    music = {"command": "python", "args": ["-m", "servers.music"], "cwd": str(ROOT), "stateful": True}
    run_options.servers.write_text(json.dumps({"mcpServers": {"music": music}}))
    await generate(run_options, model=ScriptedModel(turn))
    traces = read_traces(run_options.out / TRACES_FILE)
    assert len(traces) == 3 and sorted(played.values()) == tracks
    for trace in traces:
        own = played[trace.sampling.seed]
        now = trace.steps[1].result
        assert now is not None and not now.is_error and names[own] in now.text
        assert all(names[other] not in now.text for other in tracks if other != own)
        # the state each episode recorded is its own session's, through the resource
        assert trace.final_state["music"]["music://state"]["session_plays"] == [own]
