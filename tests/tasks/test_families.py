"""Task families through the real bundled servers (stdio): the oracle reaches every reward's
maximum on them, train and held-out never share a value, the same request gives the same tasks,
the weather trap is a trap, and bad requests are one clear line."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mcp import Client

import servers
from rewards import available_rewards, score_trace
from sandbox.episodes import Limits
from sandbox.hub import ToolHub, load_config
from sandbox.models import OracleModel
from sandbox.records import ConfigError, Sampling, Task, Trace, read_tasks
from sandbox.runs import GauntletReport, run_sample
from sandbox.tasks import FAMILIES, TaskGenerationError, TaskMaker, make_tasks, split_of

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "servers" / "mcp.json"
WEATHER_KINDS = 8  # temp, feels, high, low, precip, swing, wear-cold, wear-warm: one each for n=8


@pytest.fixture(scope="module")
def portal() -> Iterator[BlockingPortal]:
    with start_blocking_portal() as portal:
        yield portal


@pytest.fixture(scope="module")
def maker(portal: BlockingPortal) -> Iterator[TaskMaker]:
    """One TaskMaker on the bundled servers for the whole module (their data is read once)."""
    with portal.wrap_async_context_manager(TaskMaker(CONFIG)) as opened:
        yield opened


@pytest.fixture(scope="module")
def make(portal: BlockingPortal, maker: TaskMaker) -> Callable[..., list[Task]]:
    def make(family: str, n: int, seed: int, split: str) -> list[Task]:
        return portal.call(maker.make, family, n, seed, split)

    return make


def values(task: Task) -> set[tuple[str, str]]:
    """The (domain, value) pairs a task declares in its tags (``place=Denver``)."""
    return {tuple(tag.split("=", 1)) for tag in task.tags if "=" in tag}  # type: ignore[misc]


# --------------------------------------------------------------------------- the oracle


async def _oracle(tasks: list[Task]) -> GauntletReport:
    """The oracle on every task through the real servers, scored by every bundled reward."""
    rewards = available_rewards()
    config = load_config(CONFIG)
    used = sorted({name for task in tasks for name in task.servers})
    maxima = {name: getattr(reward, "maximum", None) for name, reward in rewards.items()}
    report = GauntletReport(list(rewards), [], {}, maxima, tasks)
    oracle, limiter = OracleModel(tasks), anyio.CapacityLimiter(4)
    async with ToolHub({name: config[name] for name in used}) as hub:

        async def one(task: Task) -> None:
            async with limiter:
                trace = await run_sample(
                    task, 0, oracle, hub, Limits(max_steps=6), mode="free", sampling=Sampling()
                )
                report.oracle[task.id] = score_trace(trace, task, rewards)

        async with anyio.create_task_group() as group:
            for task in tasks:
                group.start_soon(one, task)
    return report


@pytest.fixture(scope="module")
def oracle_run(make: Callable[..., list[Task]]) -> GauntletReport:
    tasks = [
        *make("all", 2 * len(FAMILIES), 11, "train"),
        *make("all", 2 * len(FAMILIES), 11, "heldout"),
        *make("weather", WEATHER_KINDS, 11, "train"),
        *make("weather", WEATHER_KINDS, 11, "heldout"),
    ]
    unique = list({task.id: task for task in tasks}.values())
    return anyio.run(_oracle, unique)


def test_the_oracle_reaches_every_rewards_maximum_on_every_family(oracle_run: GauntletReport) -> None:
    assert {task.id.split("-")[0] for task in oracle_run.tasks} == set(FAMILIES)
    for name in oracle_run.rewards:
        best = oracle_run.oracle_max(name)
        assert best.declared and best.holds, (name, best.missed)
        assert best.checked >= len(oracle_run.tasks) - 2, name  # a reward may not score a few (None)
    for task in oracle_run.tasks:
        trace: Trace = oracle_run.oracle[task.id]
        assert trace.rewards["outcome"].value == 1.0, (task.id, trace.rewards["outcome"].reason)
        assert [call.name for call in trace.tool_calls] == [call.name for call in task.solution], task.id
        assert all(step.result is None or not step.result.is_error for step in trace.steps), task.id


def test_every_task_carries_what_the_seed_tasks_carry(oracle_run: GauntletReport) -> None:
    for task in oracle_run.tasks:
        assert task.servers and task.tags and task.prompt, task.id
        if "no-tool" in task.tags:
            assert task.ideal_calls == [] and task.solution == [], task.id
        else:
            assert task.ideal_calls and task.solution, task.id
        assert task.expected_answer is not None or task.expected_state, task.id
        if task.expected_state:
            assert task.milestones, task.id
    kinds = {tag for task in oracle_run.tasks for tag in task.tags}
    assert {"trap", "ambiguous", "no-tool", "history", "word-problem", "state"} <= kinds


def test_facts_only_a_tool_holds_must_rest_on_it(oracle_run: GauntletReport) -> None:
    """Weather answers, play counts, read-backs and forecast notes name their evidence; the oracle's
    answer rests on it, and the same answer with no call (or after a refused one) is a guess."""
    from rewards import outcome_reward

    grounded = [task for task in oracle_run.tasks if task.evidence]
    kinds = {tag for task in grounded for tag in task.tags}
    assert {"weather", "count-plays", "forecast-note"} <= kinds
    assert all(task.evidence for task in oracle_run.tasks if task.id.startswith("weather-"))
    assert not any(task.evidence for task in oracle_run.tasks if "no-tool" in task.tags)
    for task in grounded:
        oracle = oracle_run.oracle[task.id]
        assert oracle.rewards["outcome"].components["grounded"] == 1.0, task.id
        answer_step = oracle.steps[-1]
        guess = oracle.model_copy(update={"steps": [answer_step.model_copy(update={"index": 0})]})
        verdict = outcome_reward(guess, task)
        assert verdict.value == 0.0 and verdict.reason.startswith("no evidence"), (task.id, verdict.reason)
        refused = [
            step.model_copy(update={"result": step.result.model_copy(update={"is_error": True})})
            if step.result is not None
            else step
            for step in oracle.steps
        ]
        if not task.expected_state:  # a refused write also fails the state check, for its own reason
            assert outcome_reward(oracle.model_copy(update={"steps": refused}), task).value == 0.0, task.id


@pytest.mark.parametrize("family", ["calculator", "files", "direct"])
@pytest.mark.parametrize("split", ["train", "heldout"])
def test_a_draw_takes_the_kinds_in_turn(make: Callable[..., list[Task]], family: str, split: str) -> None:
    """Two tasks of every kind in a draw of twice the kinds: none is missed by chance (16 calculator
    tasks drawn at random held no bracketed sum, and 16 files tasks one read-back)."""
    from sandbox.tasks import _calculator, _direct, _files

    kinds = {"calculator": sorted(_calculator._KINDS), "files": _files.KINDS, "direct": _direct.KINDS}[family]
    for seed in (1, 2, 3):
        tasks = make(family, 2 * len(kinds), seed, split)
        counts = {kind: sum(kind in task.tags for task in tasks) for kind in kinds}
        assert min(counts.values()) >= 1 and max(counts.values()) <= 4, (seed, counts)


def test_a_read_back_rests_on_reading_the_file(make: Callable[..., list[Task]]) -> None:
    backs = [task for task in make("files", 12, 5, "train") if "read-back" in task.tags]
    assert backs
    for task in backs:
        assert [call.name for call in task.evidence] == ["read_file"], task.id


def test_a_play_tasks_first_answer_names_title_and_artist_and_accepts_no_more(
    make: Callable[..., list[Task]],
) -> None:
    from rewards import answers_match

    plays = [task for task in make("music", 12, 5, "train") if "count-plays" not in task.tags]
    assert plays
    for task in plays:
        first, *others = task.acceptable_answers
        assert " by " in first and others, task.id
        for other in others:  # each other answer is inside the first, so it widens nothing
            assert answers_match(first, [other], "contains"), (task.id, other)


# --------------------------------------------------------------------------- the split


async def _places() -> list[str]:
    async with Client(servers.weather_server) as client:
        result = await client.call_tool("list_locations", {})
    assert result.structured_content is not None
    return list(result.structured_content["locations"])


PLACES = anyio.run(_places)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 10**9), n=st.integers(1, 30))
def test_train_and_heldout_share_no_value(make: Callable[..., list[Task]], seed: int, n: int) -> None:
    train, heldout = make("all", n, seed, "train"), make("all", n, seed + 1, "heldout")
    assert len(train) == len(heldout) == n
    for split, tasks in (("train", train), ("heldout", heldout)):
        for task in tasks:
            assert values(task), task.id
            assert all(split_of(domain, value) == split for domain, value in values(task)), task.id
    assert not {v for t in train for v in values(t)} & {v for t in heldout for v in values(t)}
    # read from the prompts themselves, not the tags: places, and the numbers of calculator tasks
    for split, tasks in (("train", train), ("heldout", heldout)):
        for task in tasks:
            named = {place for place in PLACES if re.search(rf"\b{re.escape(place)}\b", task.prompt)}
            assert all(split_of("place", place) == split for place in named), task.id
            if task.id.startswith("calculator-") or task.id.startswith("direct-sum"):
                numbers = [int(found) for found in re.findall(r"\d+", task.prompt)]
                assert numbers and all(split_of("number", number) == split for number in numbers), task.id


def test_each_family_draws_both_splits_from_disjoint_domains(make: Callable[..., list[Task]]) -> None:
    for family in FAMILIES:
        train, heldout = make(family, 6, 3, "train"), make(family, 6, 3, "heldout")
        assert len({t.id for t in train}) == 6 and len({t.id for t in heldout}) == 6, family
        assert not {t.prompt for t in train} & {t.prompt for t in heldout}, family
        assert not {v for t in train for v in values(t)} & {v for t in heldout for v in values(t)}, family


def test_the_same_request_gives_the_same_tasks(make: Callable[..., list[Task]]) -> None:
    first = [task.model_dump() for task in make("all", 12, 5, "heldout")]
    again = [task.model_dump() for task in make("all", 12, 5, "heldout")]
    other = [task.model_dump() for task in make("all", 12, 6, "heldout")]
    assert first == again and first != other
    assert [task["id"].split("-")[0] for task in first[:5]] == list(FAMILIES)  # round-robin


# --------------------------------------------------------------------------- the trap


async def _weather(tool: str, place: str, date: str) -> dict[str, Any]:
    async with Client(servers.weather_server) as client:
        result = await client.call_tool(tool, {"location": place, "date": date})
    assert result.structured_content is not None
    return result.structured_content


def test_the_trap_is_warm_by_day_and_cold_at_the_hour(make: Callable[..., list[Task]]) -> None:
    for split in ("train", "heldout"):
        traps = [task for task in make("weather", WEATHER_KINDS, 2, split) if "trap" in task.tags]
        assert traps, split
        for task in traps:
            call = task.solution[0]
            assert call.name == "get_hourly_forecast"
            place, date = call.arguments["location"], call.arguments["date"]
            daily = anyio.run(_weather, "get_daily_forecast", place, date)
            hourly = anyio.run(_weather, "get_hourly_forecast", place, date)
            hour = int(task.id.rsplit("-", 1)[1].removesuffix("h"))
            assert daily["high_f"] >= 60  # the daily summary suggests light clothes
            assert hourly["hours"][hour]["temp_f"] <= 45  # the hour asked about is cold
            assert "coat" in task.acceptable_answers and "t-shirt" in task.distractors
            assert [ideal.name for ideal in task.ideal_calls] == ["get_hourly_forecast"]


async def _input_schema(tool: str) -> dict[str, Any]:
    async with Client(servers.weather_server) as client:
        listed = await client.list_tools()
    return next(spec.input_schema for spec in listed.tools if spec.name == tool)


def test_an_hour_question_accepts_any_range_that_holds_the_hour(make: Callable[..., list[Task]]) -> None:
    """The reference asks for the hour alone (a one-line result); a call for the whole day or any
    range around the hour matches the ideal call too, and a range that misses the hour does not."""
    from rewards import check_call

    hour_tasks = [task for task in make("weather", WEATHER_KINDS, 2, "train") if "hourly" in task.tags]
    assert hour_tasks
    schema = anyio.run(_input_schema, "get_hourly_forecast")
    for task in hour_tasks:
        hour = int(task.id.rsplit("-", 1)[1].removesuffix("h"))
        reference = task.solution[0].arguments
        assert (reference["start_hour"], reference["end_hour"]) == (hour, hour)

        def matches(task: Task = task, **hours: int) -> bool:
            where = task.solution[0].arguments
            arguments = {"location": where["location"], "date": where["date"], **hours}
            return check_call("get_hourly_forecast", arguments, task.ideal_calls[0], schema).ok

        assert matches() and matches(start_hour=hour, end_hour=hour)
        assert matches(start_hour=max(hour - 2, 0), end_hour=min(hour + 1, 23))
        if hour < 23:
            assert not matches(start_hour=hour + 1)
        assert not matches(end_hour=hour - 1)  # the questions ask about 7am or later


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("family", "n", "split", "message"),
    [
        ("nope", 3, "train", f"unknown task family 'nope'; known: {', '.join(FAMILIES)} or all"),
        ("weather", 0, "train", "--n must be at least 1 (got 0)"),
        ("weather", 3, "test", "unknown split 'test'; use train or heldout"),
    ],
)
def test_bad_requests_are_one_clear_line(family: str, n: int, split: str, message: str) -> None:
    with pytest.raises(TaskGenerationError) as caught:
        make_tasks(family, n, 0, split, servers=CONFIG)
    assert str(caught.value) == message


def test_asking_for_more_tasks_than_a_family_has(make: Callable[..., list[Task]]) -> None:
    expected = r"family 'music' has \d+ distinct heldout task\(s\); --n 5000"
    with pytest.raises(TaskGenerationError, match=expected):
        make("music", 5000, 0, "heldout")


def test_a_config_without_the_servers_a_family_reads(tmp_path: Path) -> None:
    config = tmp_path / "mcp.json"
    calculator = {"command": "python", "args": ["-m", "servers.calculator"]}
    config.write_text(json.dumps({"mcpServers": {"calculator": calculator}}))
    assert len(make_tasks("calculator", 2, 0, "train", servers=config)) == 2
    with pytest.raises(ConfigError, match="configures no music, weather server"):
        make_tasks("files", 2, 0, "train", servers=config)


def test_the_cli_writes_the_same_file_twice_and_refuses_to_overwrite(
    sandbox_cli: Callable[..., Any], tmp_path: Path
) -> None:
    out = tmp_path / "t.jsonl"
    args = ["tasks", "--family", "calculator", "--n", "5", "--seed", "3", "--split", "heldout"]
    args += ["-o", str(out)]
    done = sandbox_cli(*args, timeout=120)
    assert done.returncode == 0, done.stderr
    assert f"wrote 5 heldout task(s) to {out} (calculator 5)" in done.stdout
    first = out.read_bytes()
    tasks = read_tasks(out)
    assert len(tasks) == 5 and all(task.id.startswith("calculator-") for task in tasks)
    refused = sandbox_cli(*args, timeout=120)
    assert refused.returncode == 2
    refusal = f"error: {out} already exists; pass --overwrite to replace it, or pick another -o"
    assert refused.stderr.strip() == refusal
    again = sandbox_cli(*args, "--overwrite", timeout=120)
    assert again.returncode == 0 and out.read_bytes() == first
