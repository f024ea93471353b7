"""Outcome from the world and steps graded by milestones: real servers over stdio, a scripted model.

The music and files seed tasks are run as episodes against the bundled servers (``servers/mcp.json``
entries, over stdio, each episode with its own stateful session); the state the episode recorded
through the servers' resources decides the outcome, and the milestone PRM grades the steps.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rewards import (
    MilestonePRM,
    check_state,
    is_tool_task,
    outcome_reward,
    process_mean_reward,
    process_reward,
    task_milestones,
)
from sandbox.episodes import Limits, run_episode
from sandbox.hub import ToolHub, load_config
from sandbox.models import ScriptedModel
from sandbox.records import StateCheck, Task, Trace, read_tasks

ROOT = Path(__file__).resolve().parents[2]
SEED = {task.id: task for task in read_tasks(ROOT / "sandbox" / "data" / "seed.jsonl")}
CONFIG = {
    "mcpServers": {
        "music": {"command": "python", "args": ["-m", "servers.music"], "cwd": str(ROOT), "stateful": True},
        "files": {
            "command": "python",
            "args": ["-m", "servers.files", "{state_dir}"],
            "cwd": str(ROOT),
            "stateful": True,
        },
    }
}


def _call(name: str, arguments: dict[str, Any]) -> str:
    payload = json.dumps({"name": name, "arguments": arguments})
    return f"<think>go</think>\n<tool_call>\n{payload}\n</tool_call>"


def _answer(text: str) -> str:
    return f"<think>done</think>\n<answer>{text}</answer>"


async def _run(task: Task, turns: list[str], max_steps: int = 6) -> Trace:
    async with ToolHub(load_config(CONFIG), pool_size=0) as hub, hub.episode(task.servers) as episode:
        return await run_episode(task, ScriptedModel(turns), episode, Limits(max_steps=max_steps))


TOXIC = SEED["music-play-toxic"]
SEARCH = _call("search_library", {"query": "Toxic"})


@pytest.mark.anyio
async def test_playing_the_catalog_toxic_fails_whatever_the_answer_says() -> None:
    wrong = await _run(
        TOXIC, [_call("play", {"track_id": "cat-001"}), _answer("Playing Toxic by BoyWithUke.")]
    )
    right = await _run(
        TOXIC, [SEARCH, _call("play", {"track_id": "lib-001"}), _answer("Toxic by BoyWithUke")]
    )
    assert wrong.final_state["music"]["music://state"]["now_playing"] == "cat-001"
    failed = outcome_reward(wrong, TOXIC)
    assert failed.value == 0.0 and failed.components["state_correct"] == 0.0
    assert 'music music://state now_playing equals "lib-001"' in failed.reason
    assert "cat-001" in failed.reason
    passed = outcome_reward(right, TOXIC)
    assert passed.value == 1.0 and passed.version == "5", passed.reason


@pytest.mark.anyio
async def test_clean_beats_looping_beats_minefield_under_process() -> None:
    clean = await _run(
        TOXIC, [SEARCH, _call("play", {"track_id": "lib-001"}), _answer("Toxic by BoyWithUke")]
    )
    looping = await _run(TOXIC, [SEARCH] * 6)
    mined = await _run(
        TOXIC,
        [
            SEARCH,
            _call("play", {"track_id": "cat-001"}),
            _call("play", {"track_id": "lib-001"}),
            _answer("Toxic by BoyWithUke"),
        ],
    )
    scores = [process_reward(trace, TOXIC) for trace in (clean, looping, mined)]
    assert [score.per_step for score in scores] == [
        [1.0, 1.0, 1.0],  # the answer after every milestone earns its step too
        [1.0, 0.0, 0.0, 0.0, 0.0, 0.0],
        [0.0, 0.0, 0.0, 0.0],
    ]
    values = [score.value for score in scores]
    assert values == [4.0, 1.0, 0.0]
    assert "minefield: step 1 reached the forbidden state" in scores[2].reason
    assert scores[2].components["minefield"] == 1.0
    assert outcome_reward(mined, TOXIC).value == 1.0  # the world ends right: only the process sees the mine
    means = [process_mean_reward(trace, TOXIC).value for trace in (clean, looping, mined)]
    assert means[0] > means[1] > means[2] == 0.0  # type: ignore[operator]


@pytest.mark.anyio
async def test_files_seed_tasks_are_judged_on_the_folder() -> None:
    note = SEED["files-save-note"]
    written = await _run(
        note, [_call("write_file", {"path": "notes.txt", "content": "buy milk\n"}), _answer("Saved.")]
    )
    claimed = await _run(note, [_answer("I saved 'buy milk' in notes.txt.")])
    assert outcome_reward(written, note).value == 1.0
    lie = outcome_reward(claimed, note)
    assert lie.value == 0.0 and "files.notes.txt contains" in lie.reason and "nothing is there" in lie.reason
    assert process_reward(written, note).value == 3.0  # the write, the answer after it, the outcome
    assert process_reward(claimed, note).value == 0.0


@pytest.mark.anyio
async def test_a_read_only_task_that_plays_something_steps_on_its_minefield() -> None:
    task = SEED["music-last-played"]
    clean = await _run(task, [_call("get_recently_played", {}), _answer("Sweater Weather")])
    meddling = await _run(
        task,
        [
            _call("get_recently_played", {}),
            _call("play", {"track_id": "lib-005"}),
            _answer("Sweater Weather"),
        ],
    )
    assert process_reward(clean, task).per_step == [1.0, 1.0]  # the call and the fact in one step; the answer
    assert outcome_reward(meddling, task).value == 0.0  # something is playing now
    assert process_reward(meddling, task).value == 0.0


# --------------------------------------------------------------------------- the rules, without servers


def test_seed_tool_tasks_declare_what_the_milestone_prm_needs() -> None:
    for task in SEED.values():
        if {"music", "files"} & set(task.servers):
            assert task.expected_state and task.milestones, task.id
        if "no-tool" in task.tags:
            assert not is_tool_task(task), task.id  # math and no-tool answers keep the rule PRM
    assert SEED["music-play-toxic"].minefields and SEED["music-play-circles"].minefields
    assert task_milestones(SEED["calc-pens-word-problem"])[0].call is not None  # derived from ideal calls


def test_a_state_check_on_a_missing_resource_fails_even_absent() -> None:
    check = StateCheck(server="music", resource="music://state", path="x", op="absent")
    assert not check_state(check, {}).holds
    assert not check_state(check, {"music": {"music://state": None}}).holds
    assert check_state(check, {"music": {"music://state": {}}}).holds


@given(
    key=st.text(st.sampled_from("ab."), min_size=1, max_size=6).filter(
        lambda k: not k.startswith(".") and not k.endswith(".") and ".." not in k
    ),
    value=st.one_of(st.integers(), st.text(max_size=5), st.none()),
)
def test_a_key_with_dots_is_reached_and_equals_its_value(key: str, value: Any) -> None:
    state = {"s": {"r": {"files": {key: value}}}}
    found = StateCheck(server="s", resource="r", path=f"files.{key}", op="equals", value=value)
    other = StateCheck(server="s", resource="r", path=f"files.{key}", op="equals", value=[value])
    assert check_state(found, state).holds
    assert not check_state(other, state).holds
    assert check_state(found.model_copy(update={"op": "exists"}), state).holds


def test_the_milestone_prm_keeps_the_protocol() -> None:
    from rewards import ProcessRewardModel

    assert isinstance(MilestonePRM(), ProcessRewardModel)
