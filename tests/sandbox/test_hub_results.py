"""What real servers send beside plain text reaches the model as text, and tools the hub cannot call
(MCP task augmentation) are left out at start-up, saying so."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import anyio
import pytest

from rewards import outcome_reward
from sandbox.episodes import run_episode
from sandbox.hub import MAX_RESOURCE_CHARS, ToolHub, load_config
from sandbox.models import ScriptedModel
from sandbox.records import Task

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
CONTENT = {"content": {"command": "python", "args": [str(FIXTURES / "content_server.py")]}}
NODE_MODULES = Path(sys.prefix) / "node" / "node_modules"  # where `make install-test` puts the TS SDK


async def _results(names: list[str]) -> list:
    async with ToolHub(load_config({"mcpServers": CONTENT})) as hub:
        return [await hub.call(name, {}) for name in names]


def test_embedded_resources_and_links_reach_the_model_as_text_and_uri() -> None:
    page, link, logo = anyio.run(_results, ["read_page", "find_file", "get_logo"])
    assert not page.is_error
    head = "[resource file:///site/index.html (text/html)]\n<html><head><title>Test page"
    assert page.text.startswith(head)
    assert "more characters of this resource cut" in page.text and "THE END" not in page.text
    assert len(page.text) < MAX_RESOURCE_CHARS + 200  # bounded
    assert link.text == (
        "Found one file:\n[resource link file:///docs/notes.txt notes.txt: Meeting notes (text/plain)]"
    )
    assert logo.text == (
        "[resource file:///site/logo.png (image/png): 108 bytes of binary data]\n"
        "[image image/png: 108 bytes, not shown]"
    )
    assert "content]" not in page.text + link.text + logo.text


@pytest.mark.anyio
async def test_an_episode_reads_the_resource_text_and_an_answer_quoting_its_markup_scores() -> None:
    task = Task(
        id="page",
        prompt="The page's title?",
        servers=["content"],
        expected_answer="Test page",
        answer_match="contains",
        distractors=["Home page"],
    )
    call = '<tool_call>\n{"name": "read_page", "arguments": {}}\n</tool_call>'
    quoted = "<think>the title tag</think>\nIt says <title>Test page</title>"  # markup copied from the result
    model = ScriptedModel([call, quoted])
    async with ToolHub(load_config({"mcpServers": CONTENT})) as hub:
        trace = await run_episode(task, model, hub, mode="free")
    tool_message = trace.messages[3]
    assert tool_message.role == "tool" and "<title>Test page</title>" in tool_message.content
    assert "file:///site/index.html" in tool_message.content
    assert trace.final_answer == "It says <title>Test page</title>"
    assert outcome_reward(trace, task).value == 1.0
    hedged = trace.model_copy(update={"final_answer": "<title>Test page</title> or <h1>Home page</h1>"})
    assert outcome_reward(hedged, task).value == 0.0  # a distractor in markup still fails


@pytest.mark.skipif(
    shutil.which("node") is None or not (NODE_MODULES / "@modelcontextprotocol" / "sdk").exists(),
    reason="needs node and the MCP TypeScript SDK (make install-test)",
)
def test_tools_that_need_task_augmentation_are_left_out_and_said(caplog: pytest.LogCaptureFixture) -> None:
    config = {
        "tasks": {
            "command": "node",
            "args": [str(FIXTURES / "node_task_server.cjs")],
            "env": {"NODE_PATH": str(NODE_MODULES)},
        }
    }

    async def main() -> tuple:
        async with ToolHub(load_config({"mcpServers": config})) as hub:
            return hub.tools(), hub.left_out, await hub.call("long_job", {}), await hub.call("echo_now", {})

    with caplog.at_level("WARNING", logger="sandbox.hub"):
        tools, left_out, job, echo = anyio.run(main)
    assert [t.name for t in tools] == ["echo_now"] and left_out == {"tasks": ["long_job"]}
    said = [r.getMessage() for r in caplog.records if "long_job" in r.getMessage()]
    assert len(said) == 1 and "task augmentation" in said[0] and "left out" in said[0]
    assert job.is_error and job.error_kind == "unknown_tool"  # never sent to the server
    assert echo.text == "now"
