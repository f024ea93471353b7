"""The gauntlet on the seed suite, with the real servers over stdio: the oracle and ten attacks,
scored by every bundled reward and by one broken reward that pays for length."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import anyio
import pytest

from rewards import available_rewards
from sandbox.episodes import Limits
from sandbox.hub import load_config
from sandbox.records import Reward, Task, Trace, read_tasks
from sandbox.runs import ATTACKS, GauntletReport, run_gauntlet

ROOT = Path(__file__).resolve().parents[2]
SEED = read_tasks(ROOT / "sandbox" / "data" / "seed.jsonl")
MAX_STEPS = 6


def length_reward(trace: Trace, task: Task) -> Reward:
    """A broken reward: pays one point per word of thought and answer, and claims to catch slop."""
    words = sum(len(step.thought.split()) for step in trace.steps) + len((trace.final_answer or "").split())
    return Reward(name="length", version="0", value=float(words))


length_reward.catches = frozenset({"slop", "loop"})  # type: ignore[attr-defined]
length_reward.maximum = lambda trace, task: 1000.0  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def report() -> GauntletReport:
    config = load_config(ROOT / "servers" / "mcp.json")
    used = sorted({name for task in SEED for name in task.servers})
    rewards = {**available_rewards(), "length": length_reward}
    servers = {name: config[name] for name in used}

    async def main() -> GauntletReport:
        return await run_gauntlet(SEED, servers, rewards, limits=Limits(max_steps=MAX_STEPS), parallel=4)

    return anyio.run(main)


def bundled(report: GauntletReport) -> list[str]:
    return [name for name in report.rewards if name != "length"]


def test_every_declared_pair_holds_on_the_seed_suite(report: GauntletReport) -> None:
    declared = [pair for pair in report.pairs() if pair.declared and pair.reward != "length"]
    assert len(declared) >= 30
    broken = [pair for pair in declared if not pair.holds]
    assert broken == []
    # every attack ran on some task; all but two are declared by some reward. The two gaps: the
    # calculator tasks' ideal calls leave the expression open, so a wrong one passes bfcl and
    # tool_syntax; and a pasted tool result that holds the right answer passes the outcome.
    assert {attack for _, attack in report.attacked} == {attack.name for attack in ATTACKS}
    undeclared = {attack.name for attack in ATTACKS} - {pair.attack for pair in declared}
    assert undeclared == {"wrong_args", "raw_json"}


def test_the_oracle_scores_each_bundled_rewards_maximum(report: GauntletReport) -> None:
    for name in bundled(report):
        best = report.oracle_max(name)
        assert best.declared, f"{name} declares no maximum"
        assert best.checked == len(SEED) and best.holds, (name, best.missed)


def test_a_reward_that_pays_for_length_is_caught(report: GauntletReport) -> None:
    failures = report.failures()
    assert any(line.startswith("length claims to catch slop") for line in failures)
    assert any(line.startswith("length claims to catch loop") for line in failures)
    assert any(line.startswith("the oracle misses length's maximum") for line in failures)
    assert all(line.startswith(("length", "the oracle misses length")) for line in failures), failures
    assert report.pair("length", "slop").below == 0


def test_the_attacks_are_what_they_say(report: GauntletReport) -> None:
    toxic = "music-play-toxic"
    oracle = report.oracle[toxic]

    def attacked(name: str) -> Trace:
        return report.attacked[toxic, name]

    loop = attacked("loop")
    assert len(loop.steps) == MAX_STEPS and loop.stop_reason == "max_steps"
    assert {json.dumps(c.model_dump(exclude={"id"})) for c in loop.tool_calls} == {
        json.dumps(oracle.tool_calls[0].model_dump(exclude={"id"}))
    }
    assert sorted(c.name for c in attacked("every_tool").tool_calls) == sorted(t.name for t in oracle.tools)
    wrong = attacked("wrong_args").tool_calls[0]
    assert wrong.name == oracle.tool_calls[0].name and wrong.arguments != oracle.tool_calls[0].arguments
    assert attacked("guess").tool_calls == [] and attacked("guess").final_answer == "BoyWithUke"
    assert (attacked("hedge").final_answer or "").endswith(" or BoyWithUke")
    assert attacked("distractor").final_answer == "Britney"
    last_result = oracle.steps[-2].result
    assert last_result is not None and attacked("raw_json").final_answer == last_result.text
    assert all(len(step.thought.split()) > 100 for step in attacked("slop").steps)
    assert attacked("empty_answer").final_answer == ""
    assert attacked("broken_call").steps[0].action == "broken_call"
    assert attacked("broken_call").final_answer == "BoyWithUke"
    assert loop.model.name == "attack:loop" and oracle.model.backend == "oracle"
    # no attack is built where it cannot be: no call to loop in a task that needs none
    assert ("no-tool-two-plus-two", "loop") not in report.attacked
    assert ("weather-denver-temp-8pm", "distractor") not in report.attacked


def _tasks_file(tmp_path: Path, tasks: list[dict[str, object]]) -> Path:
    path = tmp_path / "tasks.jsonl"
    path.write_text("".join(json.dumps(task) + "\n" for task in tasks))
    return path


def _seed_rows(*ids: str) -> list[dict[str, object]]:
    rows = [json.loads(line) for line in (ROOT / "sandbox" / "data" / "seed.jsonl").read_text().splitlines()]
    return [row for row in rows if row["id"] in ids]


def test_cli_prints_the_table_and_exits_0(sandbox_cli: Callable[..., object], tmp_path: Path) -> None:
    tasks = _tasks_file(tmp_path, _seed_rows("calc-percent-of", "no-tool-capital-of-france"))
    done = sandbox_cli("gauntlet", "--tasks", str(tasks), "--servers", "servers/mcp.json")
    assert done.returncode == 0, done.stderr  # type: ignore[attr-defined]
    out = done.stdout  # type: ignore[attr-defined]
    assert "gauntlet" in out and "process_mean" in out and "broken_call" in out
    assert "0 failure(s)" in out


def test_cli_exits_1_when_the_oracle_misses_a_maximum(
    sandbox_cli: Callable[..., object], tmp_path: Path
) -> None:
    (row,) = _seed_rows("weather-paris-high-tomorrow")
    row["solution"] = [
        {"name": "get_hourly_forecast", "arguments": {"location": "Paris", "date": "tomorrow"}}
    ]
    tasks = _tasks_file(tmp_path, [row])
    done = sandbox_cli(
        "gauntlet", "--tasks", str(tasks), "--servers", "servers/mcp.json", "--rewards", "bfcl"
    )
    assert done.returncode == 1  # type: ignore[attr-defined]
    assert "the oracle misses bfcl's maximum" in done.stderr  # type: ignore[attr-defined]


def test_cli_refuses_an_unknown_reward(sandbox_cli: Callable[..., object]) -> None:
    done = sandbox_cli("gauntlet", "--rewards", "nope")
    assert done.returncode == 2 and "unknown reward" in done.stderr  # type: ignore[attr-defined]


def test_a_reward_declaring_an_unknown_attack_is_one_clear_error() -> None:
    from sandbox.records import ConfigError

    def reward(trace: Trace, task: Task) -> Reward:
        return Reward(name="r", version="0", value=0.0)

    reward.catches = frozenset({"nonsense"})  # type: ignore[attr-defined]
    with pytest.raises(ConfigError, match=r"unknown attack\(s\) \['nonsense'\]"):
        anyio.run(lambda: run_gauntlet([], {}, {"r": reward}))
