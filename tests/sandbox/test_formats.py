"""Turn formats: the tag format and each family's native one, chosen from the chat template.

The native families are tested on copies of the embedded GGUF with another family's chat template set
in its metadata (``sandbox.models.write_chat_template``; the templates are this project's own, in
``tests/fixtures/templates``), and the Hermes one end to end: a real episode over the real calculator
server on stdio, its trace's format, and an export that renders back to the text the model saw.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sandbox.datasets import chat_messages
from sandbox.episodes import Limits, episode_format, run_episode
from sandbox.hub import ToolHub, load_config
from sandbox.models import LlamaModel, ModelRequest, ScriptedModel, default_model_path, write_chat_template
from sandbox.records import ConfigError, Task, ToolCall, ToolSpec, Trace
from sandbox.turns import Format, choose_format, detect_format, format_from_label

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = ROOT / "tests" / "fixtures" / "templates"
FAMILIES = {
    "hermes": "hermes",
    "qwen3": "hermes+think",
    "llama3": "llama3",
    "mistral": "mistral",
    "functiongemma": "functiongemma",
}
NATIVE = [
    Format("hermes", think=False),
    Format("hermes", think=True),
    Format("llama3", False),
    Format("mistral", False),
    Format("functiongemma", False),
]
TASK = Task(
    id="calc",
    prompt="What is 17*24-39?",
    servers=["calculator"],
    expected_answer="369",
    answer_match="number",
)


def _template(name: str) -> str:
    return (TEMPLATES / f"{name}.jinja").read_text()


# --------------------------------------------------------------------------- choosing


@pytest.mark.parametrize(("fixture", "label"), FAMILIES.items())
def test_the_family_is_read_from_the_template(fixture: str, label: str) -> None:
    assert detect_format(_template(fixture)).label == label  # type: ignore[union-attr]
    assert choose_format("auto", _template(fixture)).label == label
    assert choose_format("tags", _template(fixture)).label == "tags"


def test_a_template_without_tools_runs_tags_and_refuses_native() -> None:
    smollm = (
        "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}{% endfor %}"
    )
    assert detect_format(smollm) is None and detect_format(None) is None
    assert choose_format("auto", smollm).label == "tags"
    with pytest.raises(ConfigError, match="no tools branch"):
        choose_format("native", smollm)
    with pytest.raises(ConfigError, match="--format must be one of"):
        choose_format("json", smollm)
    assert choose_format("mistral", smollm).label == "mistral"  # a family by name is taken as asked


def test_labels_read_back_and_old_traces_ran_tags() -> None:
    for fmt in [Format(), *NATIVE]:
        assert format_from_label(fmt.label) == fmt
    trace = Trace.model_validate(
        {
            "id": "x",
            "task_id": "t",
            "task": TASK.model_dump(),
            "model": {"name": "m"},
            "stop_reason": "answer",
        }
    )
    assert trace.format == "tags"


# --------------------------------------------------------------------------- parsing

_names = st.from_regex(r"[a-z][a-z0-9_]{0,20}", fullmatch=True)
_scalars = st.none() | st.booleans() | st.integers(-(10**6), 10**6) | st.text(max_size=30)
_arguments = st.dictionaries(
    st.text(min_size=1, max_size=10),
    st.recursive(
        _scalars,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
        max_leaves=8,
    ),
    max_size=4,
)


@settings(max_examples=150, deadline=None)
@given(
    fmt=st.sampled_from([Format(), *NATIVE]),
    name=_names,
    arguments=_arguments,
    thought=st.text(alphabet="abc xyz.", max_size=40),
)
def test_render_then_parse_gives_the_call_back(fmt: Format, name: str, arguments: dict, thought: str) -> None:
    call = ToolCall(id="call_3", name=name, arguments=arguments)
    text = (f"<think>\n{thought}\n</think>\n" if fmt.think else "") + fmt.render_call(call)
    parsed = fmt.parse(text + "\nand then I invent the result", call_id="call_3")
    assert parsed.action == "tool_call", parsed.error
    assert parsed.call == call
    assert parsed.end is not None and text.startswith(text[: parsed.end]) and parsed.end <= len(text)
    assert fmt.parse(text[: parsed.end], call_id="call_3").call == call
    assert fmt.action_end(text + "\nmore") == parsed.end  # where generation stops


def test_native_syntax_each_family_writes() -> None:
    llama = Format("llama3", think=False)
    parsed = llama.parse('<|python_tag|>{"name": "calculate", "parameters": {"expression": "1+1"}}')
    assert parsed.call == ToolCall(id="call_0", name="calculate", arguments={"expression": "1+1"})
    assert llama.parse("<|python_tag|>print(1)").action == "broken_call"
    mistral = Format("mistral", think=False)
    two = '[{"name": "calculate", "arguments": {"expression": "2*3"}}, {"name": "x", "arguments": {}}]'
    parsed = mistral.parse("[TOOL_CALLS]" + two)
    assert parsed.call is not None and parsed.call.name == "calculate"  # the first call runs
    assert (
        mistral.parse("[TOOL_CALLS][]").error == "tool call is empty list"
        or mistral.parse("[TOOL_CALLS][]").action == "broken_call"
    )
    deep = "[TOOL_CALLS][" + '{"name": "x", "arguments": ' + '{"a": ' * 100 + "1" + "}" * 100 + "}]"
    assert "nested deeper than 64" in (mistral.parse(deep).error or "")
    hermes = Format("hermes", think=False)
    assert hermes.parse("It is 369.").answer == "It is 369."  # plain text answers


GEMMA = Format("functiongemma", think=False)


def test_functiongemma_syntax_is_read_in_order_and_leniently() -> None:
    call = "<start_function_call>call:calculate{expression:<escape>2*3<escape>}<end_function_call>"
    later = "<start_function_call>call:other{}<end_function_call>"
    text = "I will compute.\n" + call + "<start_function_response>response:calculate{value:9}" + later
    parsed = GEMMA.parse(text)
    assert parsed.call == ToolCall(id="call_0", name="calculate", arguments={"expression": "2*3"})
    assert parsed.thought == "I will compute." and text[: parsed.end].endswith(call)  # the first call wins
    assert GEMMA.action_end(text) == parsed.end
    assert GEMMA.action_end(call[:-3]) is None  # not closed yet
    # FunctionGemma's documents allow bare values: numbers, literals and unescaped words
    bare = GEMMA.parse(
        "<start_function_call>call:f{n:15,x:-2.5,ok:true,none:null,unit:celsius}<end_function_call>"
    )
    assert bare.call is not None
    assert bare.call.arguments == {"n": 15, "x": -2.5, "ok": True, "none": None, "unit": "celsius"}
    nested = GEMMA.parse("<start_function_call>call:f{a:[1,<escape>b, c}<escape>],o:{k:<escape>v<escape>}}")
    assert nested.call is not None and nested.call.arguments == {"a": [1, "b, c}"], "o": {"k": "v"}}
    # a stop string removes the closing tag; it is put back
    assert GEMMA.complete(call.removesuffix("<end_function_call>")) == call
    assert "<end_function_call>" in GEMMA.stop_strings and "<start_function_response>" in GEMMA.stop_strings
    for broken, says in (
        ("<start_function_call>call:f{x:<escape>open}<end_function_call>", "closing <escape> is missing"),
        ("<start_function_call>f{x:1}<end_function_call>", "'call:' does not follow"),
        ("<start_function_call>call:f{x 1}<end_function_call>", "':' is expected"),
        ("<start_function_call>call:f{x:}<end_function_call>", "a value is missing"),
        ("<start_function_call>call:f{x:" + "[" * 80 + "]" * 80 + "}", "nested deeper than 64 levels"),
    ):
        turn = GEMMA.parse(broken)
        assert turn.action == "broken_call" and says in (turn.error or ""), (broken, turn.error)
    assert GEMMA.parse("It is 6.").answer == "It is 6."  # no call: a plain-text answer


def test_functiongemma_results_and_prompt() -> None:
    assert GEMMA.render_result("calculate", "369") == "calculate{value:<escape>369<escape>}"
    assert (
        GEMMA.system_prompt([]) == "You are a model that can do function calling with the following functions"
    )
    assert GEMMA.system_prompt([], "Be brief.").startswith("Be brief.\n\n")
    assert "<start_function_call>call:TOOL_NAME{}<end_function_call>" in GEMMA.retry_note("x")


def test_a_gemma3_template_has_no_tools_branch_and_runs_tags() -> None:
    """Gemma 3's template (no tools branch, roles that alternate) runs the tag format under auto."""
    template = _template("gemma3")
    assert detect_format(template) is None
    assert choose_format("auto", template).label == "tags"
    with pytest.raises(ConfigError, match="no tools branch"):
        choose_format("native", template)


@pytest.mark.parametrize("fmt", NATIVE, ids=lambda f: f.label)
def test_each_native_grammar_compiles(fmt: Format) -> None:
    from llama_cpp import LlamaGrammar

    tools = [
        ToolSpec(
            name="calculate",
            description="d",
            input_schema={
                "type": "object",
                "properties": {"expression": {"type": "string"}},
                "required": ["expression"],
            },
        )
    ]
    grammar = fmt.grammar(tools)
    assert ("[TOOL_CALLS][" in grammar) == (fmt.name == "mistral")
    assert ('"<start_function_call>call:" ( "calculate"' in grammar) == (fmt.name == "functiongemma")
    assert ('\\"parameters\\"' in grammar) == (fmt.name == "llama3")
    LlamaGrammar.from_string(grammar, verbose=False)


# --------------------------------------------------------------------------- the episode loop


@pytest.fixture
async def calculator_hub():  # type: ignore[no-untyped-def]
    from servers.calculator import server as calculator

    async with ToolHub.in_memory({"calculator": calculator}) as hub:
        yield hub


@pytest.mark.anyio
async def test_a_native_episode_sends_tools_to_the_template(calculator_hub) -> None:  # type: ignore[no-untyped-def]
    seen: list[ModelRequest] = []
    call = '<tool_call>\n{"name": "calculate", "arguments": {"expression": "17*24-39"}}\n</tool_call>'

    def reply(request: ModelRequest) -> str:
        seen.append(request)
        return call + "\n<tool_response>" if len(seen) == 1 else "It is 369."

    model = ScriptedModel(reply)
    trace = await run_episode(TASK, model, calculator_hub, mode="free", turn_format="hermes")
    assert trace.format == "hermes" and trace.final_answer == "It is 369."
    assert seen[0].template_tools is not None and seen[0].template_tools[0]["function"]["name"] == "calculate"
    assert "calculate" not in trace.messages[0].content  # the template lists the tools, not the prompt
    assert "</tool_call>" in seen[0].stop
    tool = trace.messages[3]
    assert tool.role == "tool" and "369" in tool.content and "<tool_response" not in tool.content  # bare
    assert trace.messages[2].content.endswith("</tool_call>")  # what followed the call is dropped


def test_episode_format_without_a_template_is_tags() -> None:
    assert episode_format(ScriptedModel([])).label == "tags"


# --------------------------------------------------------------------------- real GGUFs


class CallsOnly(Format):
    """A native format whose grammar leaves out the answer: a small model must call."""

    def grammar(self, tools: list[ToolSpec], allow_answer: bool = True, max_tokens: int | None = None) -> str:
        return super().grammar(tools, allow_answer=False, max_tokens=max_tokens)


@pytest.fixture(scope="module")
def family_gguf(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    folder = tmp_path_factory.mktemp("families")
    made: dict[str, Path] = {}

    class Lazy(dict):  # type: ignore[type-arg]
        def __missing__(self, name: str) -> Path:
            made[name] = write_chat_template(default_model_path(), folder / f"{name}.gguf", _template(name))
            self[name] = made[name]
            return made[name]

    yield Lazy()
    for path in made.values():
        path.unlink()


@pytest.mark.model
@pytest.mark.parametrize("family", ["hermes", "llama3", "mistral"])
def test_tools_reach_the_prompt_through_the_gguf_template(family_gguf: dict[str, Path], family: str) -> None:
    model = LlamaModel(family_gguf[family], n_ctx=2048)
    try:
        fmt = episode_format(model)
        assert fmt.label == FAMILIES[family]
        tools = [ToolSpec(name="calculate", description="Exact arithmetic.", input_schema={"type": "object"})]
        from sandbox.records import Message

        messages = [
            Message(role="system", content=fmt.system_prompt(tools)),
            Message(role="user", content="1+1?"),
        ]
        prompt = model.render(messages, tools=fmt.template_tools(tools))
        assert '"name": "calculate"' in prompt and "Exact arithmetic." in prompt
        assert "calculate" not in model.render(messages)  # without tools= the template lists none
        tokens, bos = model.tokenize(prompt), model._llm.token_bos()
        assert tokens[:2] != [bos, bos]  # one BOS, also where the template writes {{ bos_token }}
    finally:
        model.close()


@pytest.mark.model
@pytest.mark.anyio
@pytest.mark.parametrize("mode", ["constrained", "free"])
async def test_a_real_hermes_episode_over_stdio_exports_what_the_model_saw(
    family_gguf: dict[str, Path], mode: str
) -> None:
    model = LlamaModel(family_gguf["hermes"], n_ctx=4096)
    config = load_config(
        {
            "mcpServers": {
                "calculator": {"command": "python", "args": ["-m", "servers.calculator"], "cwd": str(ROOT)}
            }
        }
    )
    try:
        async with ToolHub(config) as hub:
            # The 135M model answers at once under this template; constrained, it must call.
            fmt = CallsOnly("hermes", think=False) if mode == "constrained" else "auto"
            trace = await run_episode(
                TASK, model, hub, Limits(max_steps=3, max_completion_tokens=600), mode=mode, turn_format=fmt
            )  # type: ignore[arg-type]
    finally:
        model.close()
    assert trace.format == "hermes"
    assert trace.steps and all(step.action in ("tool_call", "answer", "broken_call") for step in trace.steps)
    calls = [step for step in trace.steps if step.call is not None]
    if mode == "constrained":
        assert calls and all(step.action == "tool_call" for step in trace.steps)
    for step in calls:
        assert step.result is not None  # each call went to the real server and came back
    again = Trace.model_validate_json(trace.model_dump_json())
    assert again.format == "hermes"
    # The export renders, through the GGUF's own template as transformers renders it, the text the model saw.
    rows = chat_messages(trace, calls="text", arguments="dict")
    assert all("tool_calls" not in row for row in rows)
    fmt = Format("hermes", think=False)
    tools = fmt.template_tools(trace.tools)
    from transformers.utils.chat_template_utils import (
        render_jinja_template,  # what TRL's trainer renders with
    )

    rendered, _ = render_jinja_template(
        conversations=[rows], tools=tools, chat_template=_template("hermes"), add_generation_prompt=False
    )
    exported = rendered[0]
    reopened = LlamaModel(family_gguf["hermes"], n_ctx=4096)
    try:
        seen = reopened.render(trace.messages, add_generation_prompt=False, tools=tools)
        first_prompt = reopened.render(trace.messages[:2], tools=tools)
    finally:
        reopened.close()
    assert exported == seen
    assert (exported.startswith(first_prompt) and "<tool_response>" in exported) or not calls


TOOL_LISTING = {
    "llama3": '"name": "calculate"',
    "mistral": '[AVAILABLE_TOOLS][{"type": "function", "function": {"name": "calculate"',
    "functiongemma": "<start_function_declaration>declaration:calculate{description:<escape>",
}


@pytest.mark.model
@pytest.mark.anyio
@pytest.mark.parametrize("mode", ["constrained", "free"])
@pytest.mark.parametrize("family", list(TOOL_LISTING))
async def test_a_real_episode_in_each_native_format_over_stdio(
    family_gguf: dict[str, Path], family: str, mode: str
) -> None:
    """The embedded weights under another family's template, the real calculator over stdio: the trace
    records the family's format, the prompt the model read lists the tools as the template renders
    them, and every turn reads as a call, an answer or a broken call (constrained: calls only, each
    answered by the server). Whatever the tiny model writes, the episode ends cleanly."""
    import sys

    from sandbox.records import Sampling

    model = LlamaModel(family_gguf[family], n_ctx=4096)
    prompts: list[str] = []
    render = model.render

    def seen(*args, **kwargs):  # type: ignore[no-untyped-def]
        prompts.append(render(*args, **kwargs))
        return prompts[-1]

    model.render = seen  # type: ignore[method-assign]
    config = load_config(
        {
            "mcpServers": {
                "calculator": {
                    "command": sys.executable,
                    "args": ["-m", "servers.calculator"],
                    "cwd": str(ROOT),
                }
            }
        }
    )
    try:
        async with ToolHub(config) as hub:
            fmt = CallsOnly(family, think=False) if mode == "constrained" else "auto"  # type: ignore[arg-type]
            trace = await run_episode(
                TASK,
                model,
                hub,
                Limits(max_steps=2, max_completion_tokens=256),
                mode=mode,  # type: ignore[arg-type]
                sampling=Sampling(max_tokens=128),
                turn_format=fmt,
            )
    finally:
        model.close()
    assert trace.format == family and Trace.model_validate_json(trace.model_dump_json()).format == family
    assert prompts and TOOL_LISTING[family] in prompts[0]  # the template's own tool list
    assert "calculate" not in trace.messages[0].content  # not the system prompt's
    assert trace.stop_reason in ("answer", "max_steps", "token_budget"), trace.error
    assert trace.steps and all(s.action in ("tool_call", "answer", "broken_call") for s in trace.steps)
    if mode == "constrained":
        assert all(s.action == "tool_call" and s.call is not None for s in trace.steps)
        assert all(s.call.name == "calculate" for s in trace.steps if s.call is not None)
    for step in trace.steps:
        if step.call is not None and step.action == "tool_call":
            assert step.result is not None  # the real server answered
    tool_messages = [m for m in trace.messages if m.role == "tool"]
    if tool_messages:
        assert any(tool_messages[0].content[:20] in prompt for prompt in prompts[1:])  # the result was read


@pytest.mark.model
@pytest.mark.anyio
async def test_a_gemma3_gguf_runs_the_tag_format_with_results_as_user_turns(
    family_gguf: dict[str, Path], calculator_hub
) -> None:  # type: ignore[no-untyped-def]
    """A Gemma 3 template has no tools branch: auto runs tags, the tool list is in the system text the
    template joins to the first user turn, and a tool result goes in as a user turn (the template
    refuses a ``tool`` role), with one BOS."""
    from sandbox.records import Message, Sampling

    model = LlamaModel(family_gguf["gemma3"], n_ctx=4096)
    try:
        assert episode_format(model).label == "tags"
        tags = Format()
        tools = calculator_hub.tools(["calculator"])
        call = ToolCall(id="c", name="calculate", arguments={"expression": "1+1"})
        messages = [
            Message(role="system", content=tags.system_prompt(tools)),
            Message(role="user", content="1+1?"),
            Message(role="assistant", content=tags.render_call(call)),
            Message(
                role="tool", name="calculate", tool_call_id="c", content=tags.render_result("calculate", "2")
            ),
        ]
        prompt = model.render(messages)
        assert prompt.count("<start_of_turn>user\n") == 2 and "<start_of_turn>tool" not in prompt
        assert f"<start_of_turn>user\n{tags.system_prompt(tools)}\n\n1+1?<end_of_turn>" in prompt
        assert '<start_of_turn>user\n<tool_response name="calculate">\n2' in prompt
        tokens, bos = model.tokenize(prompt), model._llm.token_bos()
        assert tokens[:2] != [bos, bos]
        trace = await run_episode(
            TASK,
            model,
            calculator_hub,
            Limits(max_steps=2, max_completion_tokens=256),
            sampling=Sampling(max_tokens=128),
        )
    finally:
        model.close()
    assert trace.format == "tags" and trace.stop_reason in ("answer", "max_steps", "token_budget")
    assert trace.steps and all(s.action in ("tool_call", "answer", "broken_call") for s in trace.steps)
