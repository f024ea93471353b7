"""The loop, driven by a scripted model over real in-memory MCP servers."""

from pathlib import Path

import anyio
import pytest

from sandbox.episodes import Limits, run_episode
from sandbox.hub import ToolHub, load_config
from sandbox.models import ModelRequest, ScriptedModel
from sandbox.records import ContextFullError, Minefield, StateCheck, Task, Trace

CALL = '<think>need data</think>\n<tool_call>\n{{"name": "{name}", "arguments": {args}}}\n</tool_call>'


@pytest.fixture
async def hub():  # type: ignore[no-untyped-def]
    from servers.calculator import server as calculator
    from servers.weather import server as weather

    async with ToolHub.in_memory({"weather": weather, "calculator": calculator}) as hub:
        yield hub


TASK = Task(
    id="t1", prompt="What is 17*24-39?", servers=["calculator"], expected_answer="369", answer_match="number"
)


@pytest.mark.anyio
async def test_call_then_answer(hub) -> None:  # type: ignore[no-untyped-def]
    model = ScriptedModel(
        [
            CALL.format(name="calculate", args='{"expression": "17*24-39"}'),
            "<think>done</think>\n<answer>369</answer>",
        ]
    )
    trace = await run_episode(TASK, model, hub)
    assert trace.stop_reason == "answer" and trace.final_answer == "369"
    assert [s.action for s in trace.steps] == ["tool_call", "answer"]
    result = trace.steps[0].result
    assert result is not None and not result.is_error and "369" in result.text
    assert [m.role for m in trace.messages] == ["system", "user", "assistant", "tool", "assistant"]
    assert "calculate" in trace.messages[0].content  # the tools are in the system prompt
    # the transcript is append-only: each request extends the previous one
    first, second = model.requests
    assert list(second.messages[: len(first.messages)]) == list(first.messages)
    assert second.previous_messages == 3
    assert trace.tools and trace.tools[0].name == "calculate"


@pytest.mark.anyio
async def test_broken_call_is_kept_and_the_model_is_told(hub) -> None:  # type: ignore[no-untyped-def]
    model = ScriptedModel(
        ['<tool_call>{"name": "calculate", "arguments": {</tool_call>', "<answer>369</answer>"]
    )
    trace = await run_episode(TASK, model, hub)
    assert trace.steps[0].action == "broken_call" and "not valid JSON" in (trace.steps[0].parse_error or "")
    assert trace.messages[3].role == "user" and "could not be used" in trace.messages[3].content
    assert trace.stop_reason == "answer"


@pytest.mark.anyio
async def test_tool_error_reaches_the_model(hub) -> None:  # type: ignore[no-untyped-def]
    model = ScriptedModel([CALL.format(name="calculate", args='{"expression": "1/0"}'), "<answer>?</answer>"])
    trace = await run_episode(TASK, model, hub)
    assert trace.steps[0].is_error
    assert "ERROR" in trace.messages[3].content


@pytest.mark.anyio
async def test_max_steps(hub) -> None:  # type: ignore[no-untyped-def]
    model = ScriptedModel(lambda _: CALL.format(name="calculate", args='{"expression": "1+1"}'))
    trace = await run_episode(TASK, model, hub, Limits(max_steps=3))
    assert trace.stop_reason == "max_steps" and len(trace.steps) == 3 and trace.final_answer is None


@pytest.mark.anyio
async def test_token_budget(hub) -> None:  # type: ignore[no-untyped-def]
    model = ScriptedModel(lambda _: "<tool_call>" + "x" * 400)  # ~100 tokens a turn, never valid
    trace = await run_episode(TASK, model, hub, Limits(max_steps=50, max_completion_tokens=250))
    assert trace.stop_reason == "token_budget" and len(trace.steps) == 3


@pytest.mark.anyio
async def test_context_full_and_model_errors_are_stop_reasons(hub) -> None:  # type: ignore[no-untyped-def]
    def full(_: ModelRequest) -> str:
        raise ContextFullError("prompt of 4090 tokens leaves 6 of 4096")

    def broken(_: ModelRequest) -> str:
        raise RuntimeError("decode failed")

    trace = await run_episode(TASK, ScriptedModel(full), hub)
    assert trace.stop_reason == "context_full" and "4090" in (trace.error or "")
    trace = await run_episode(TASK, ScriptedModel(broken), hub)
    assert trace.stop_reason == "model_error" and "decode failed" in (trace.error or "")


@pytest.mark.anyio
async def test_free_mode_restores_stop_strings_and_sends_them(hub) -> None:  # type: ignore[no-untyped-def]
    model = ScriptedModel(['<tool_call>{"name": "calculate", "arguments": {"expression": "2+2"}}', "4"])
    trace = await run_episode(TASK, model, hub, mode="free")
    assert model.requests[0].stop and model.requests[0].grammar is None
    assert trace.messages[2].content.endswith("</tool_call>")
    assert trace.final_answer == "4"


@pytest.mark.anyio
async def test_constrained_mode_sends_a_grammar(hub) -> None:  # type: ignore[no-untyped-def]
    model = ScriptedModel(["<answer>4</answer>"])
    await run_episode(TASK, model, hub)
    grammar = model.requests[0].grammar
    assert grammar is not None and "calculate" in grammar and not model.requests[0].stop


@pytest.mark.anyio
async def test_episodes_run_concurrently_while_tools_wait(hub) -> None:  # type: ignore[no-untyped-def]
    tasks = [TASK.model_copy(update={"id": f"t{i}"}) for i in range(4)]
    results = []

    async def one(task: Task) -> None:
        model = ScriptedModel(
            [CALL.format(name="calculate", args='{"expression": "2*3"}'), "<answer>6</answer>"]
        )
        results.append(await run_episode(task, model, hub))

    with anyio.fail_after(30):
        async with anyio.create_task_group() as group:
            for task in tasks:
                group.start_soon(one, task)
    assert sorted(t.task_id for t in results) == ["t0", "t1", "t2", "t3"]
    assert all(t.final_answer == "6" for t in results)


# --------------------------------------------------------------------------- server state


ROOT = Path(__file__).resolve().parents[2]
STATEFUL = {
    "music": {"command": "python", "args": ["-m", "servers.music"], "cwd": str(ROOT), "stateful": True},
    "files": {
        "command": "python",
        "args": ["-m", "servers.files", "{state_dir}"],
        "cwd": str(ROOT),
        "stateful": True,
    },
}
PLAY_TOXIC = Task(
    id="toxic",
    prompt="Hey, play Toxic",
    servers=["music", "files"],
    expected_answer="BoyWithUke",
    answer_match="contains",
    expected_state=[
        StateCheck(server="music", resource="music://state", path="now_playing", value="lib-001")
    ],
    minefields=[
        Minefield(
            state=StateCheck(server="files", resource="files://state", path="files.notes.txt", op="exists")
        )
    ],
)


def _call(name: str, arguments: str) -> str:
    return CALL.format(name=name, args=arguments)


@pytest.mark.anyio
async def test_state_is_read_after_each_call_and_at_the_end_over_stdio() -> None:
    model = ScriptedModel(
        [
            _call("play", '{"track_id": "cat-001"}'),
            _call("write_file", '{"path": "notes.txt", "content": "hi"}'),
            _call("play", '{"track_id": "lib-001"}'),
            "<answer>Playing Toxic by BoyWithUke</answer>",
        ]
    )
    async with ToolHub(load_config({"mcpServers": STATEFUL})) as hub:
        async with hub.episode(PLAY_TOXIC.servers) as episode:
            trace = await run_episode(PLAY_TOXIC, model, episode)
        shared = await hub.call("now_playing", {})
    states = [step.state for step in trace.steps]
    assert states[0] is not None and states[0]["music"]["music://state"]["now_playing"] == "cat-001"
    assert states[0]["files"]["files://state"]["files"] == {}
    assert states[1] is not None and states[1]["files"]["files://state"]["files"] == {"notes.txt": "hi"}
    assert states[3] is None  # the answer made no call
    music = trace.final_state["music"]["music://state"]
    assert music["now_playing"] == "lib-001" and music["session_plays"] == ["cat-001", "lib-001"]
    assert shared.structured is not None and not shared.structured["playing"]  # the episode's own session
    assert {tool.name for tool in trace.tools}.isdisjoint({"state", "music://state"})
    again = Trace.model_validate_json(trace.model_dump_json())
    assert again.final_state == trace.final_state and again.steps[1].state == trace.steps[1].state


@pytest.mark.anyio
async def test_a_task_without_state_checks_reads_nothing(hub) -> None:  # type: ignore[no-untyped-def]
    model = ScriptedModel([_call("calculate", '{"expression": "1+1"}'), "<answer>2</answer>"])
    trace = await run_episode(TASK, model, hub)
    assert trace.final_state == {} and trace.steps[0].state is None


def test_old_traces_without_state_still_load() -> None:
    old = {
        "id": "x",
        "task_id": "t1",
        "task": TASK.model_dump(),
        "model": {"name": "m"},
        "stop_reason": "answer",
        "steps": [{"index": 0, "raw_text": "<answer>369</answer>", "action": "answer", "answer": "369"}],
    }
    trace = Trace.model_validate(old)
    assert trace.final_state == {} and trace.steps[0].state is None


@pytest.mark.anyio
async def test_free_mode_runs_the_first_action_and_drops_what_follows(hub) -> None:  # type: ignore[no-untyped-def]
    bare = '{"name": "calculate", "arguments": {"expression": "17*24-39"}}'
    made_up = '\n<tool_response name="calculate">\n1\n</tool_response>\n<answer>1'
    invented = "<think>x</think>\n" + bare + made_up
    entity = '```json\n{"name": "Bob", "type": "person"}\n```'
    model = ScriptedModel([invented, entity])
    trace = await run_episode(TASK, model, hub, mode="free")
    first = trace.steps[0]
    assert first.action == "tool_call" and first.result is not None and "369" in first.result.text
    assert trace.messages[2].content == "<think>x</think>\n" + bare  # the invented result never enters
    assert first.raw_text == invented
    assert trace.steps[1].action == "answer" and trace.final_answer == entity  # JSON, not a call to "Bob"
    stop_at = model.requests[0].stop_at
    assert stop_at is not None and stop_at(invented) == len("<think>x</think>\n" + bare)
    assert "<tool_response" in model.requests[0].stop
