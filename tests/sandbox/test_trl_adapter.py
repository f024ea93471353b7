"""The rewards as TRL reward functions, called exactly as GRPOTrainer calls them (TRL not installed).

GRPOTrainer calls ``reward_func(prompts=..., completions=..., completion_ids=..., **columns)`` with
every dataset column but ``prompt`` as a list aligned with the completions, plus ``trainer_state``.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from rewards import available_rewards
from sandbox.datasets import trl_reward_functions
from sandbox.records import (
    ConfigError,
    IdealCall,
    ModelInfo,
    SandboxError,
    Step,
    Task,
    ToolCall,
    ToolResult,
    ToolSpec,
    Trace,
)

WEATHER = ToolSpec(
    name="get_weather",
    input_schema={
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
        "additionalProperties": False,
    },
)
TASK = Task(
    id="weather-paris",
    prompt="Weather in Paris?",
    expected_answer="sunny",
    answer_match="contains",
    ideal_calls=[IdealCall(name="get_weather", arguments={"city": ["Paris"]})],
)
GOOD_CALL = (
    "<think>\nI need the weather.\n</think>\n"
    '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>'
)
BAD_CALL = '<tool_call>\n{"name": "get_weather", "arguments": {"city": 7}}\n</tool_call>'
ANSWER = "<answer>It is sunny in Paris.</answer>"
REWARDS = ["outcome", "tool_syntax", "cot", "process"]


def trainer_call(
    function: Any, prompts: list[Any], completions: list[Any], **columns: list[Any]
) -> list[Any]:
    """Call ``function`` the way GRPOTrainer does: keyword arguments only, token ids, trainer state."""
    completion_ids = [[1, 2, 3] for _ in completions]
    return function(
        prompts=prompts,
        completions=completions,
        completion_ids=completion_ids,
        trainer_state=object(),
        **columns,
    )


def direct_trace(steps: list[Step], final_answer: str | None) -> Trace:
    return Trace(
        id="direct",
        task_id=TASK.id,
        task=TASK,
        model=ModelInfo(name="direct"),
        tools=[WEATHER],
        steps=steps,
        final_answer=final_answer,
        stop_reason="answer" if final_answer is not None else "max_steps",
    )


def call_step(index: int, arguments: dict[str, Any], result: str | None = None) -> Step:
    return Step(
        index=index,
        raw_text="call",
        action="tool_call",
        call=ToolCall(id=f"call_{index}", name="get_weather", arguments=arguments),
        result=None if result is None else ToolResult(text=result),
    )


def answer_step(index: int) -> Step:
    return Step(index=index, raw_text=ANSWER, action="answer", answer="It is sunny in Paris.")


def expected(name: str, trace: Trace) -> float | None:
    return available_rewards()[name](trace, TASK).value


def test_each_function_is_named_for_trl_logging() -> None:
    functions = trl_reward_functions(REWARDS)
    assert [function.__name__ for function in functions] == REWARDS
    assert [f.__name__ for f in trl_reward_functions("outcome,tool_syntax")] == ["outcome", "tool_syntax"]


@pytest.mark.parametrize("name", REWARDS)
def test_standard_format_matches_the_reward_on_an_equivalent_trace(name: str) -> None:
    (function,) = trl_reward_functions([name])
    completions = [GOOD_CALL, BAD_CALL, ANSWER]
    values = trainer_call(
        function,
        [TASK.prompt] * 3,
        completions,
        task=[TASK.model_dump_json()] * 3,
        tools=[json.dumps([WEATHER.model_dump()])] * 3,
        difficulty=["easy"] * 3,  # a column the rewards do not know: ignored
    )
    assert len(values) == 3 and all(isinstance(v, float) for v in values)
    assert values == [
        expected(name, direct_trace([call_step(0, {"city": "Paris"})], None)),
        expected(name, direct_trace([call_step(0, {"city": 7})], None)),
        expected(name, direct_trace([answer_step(0)], "It is sunny in Paris.")),
    ]


@pytest.mark.parametrize("name", REWARDS)
def test_conversational_format_with_tool_messages(name: str) -> None:
    (function,) = trl_reward_functions([name])
    conversation = [
        {"role": "assistant", "content": "", "tool_calls": [
            {"type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}
        ]},
        {"role": "tool", "name": "get_weather", "content": "sunny, 24 C"},
        {"role": "assistant", "content": ANSWER},
    ]  # fmt: skip
    openai_tools = [
        {"type": "function", "function": {"name": "get_weather", "parameters": WEATHER.input_schema}}
    ]
    prompt = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": TASK.prompt}]
    values = trainer_call(
        function,
        [prompt, prompt],
        [conversation, [{"role": "assistant", "content": BAD_CALL}]],
        expected_answer=["sunny", "sunny"],
        answer_match=["contains", "contains"],
        ideal_calls=[json.dumps([c.model_dump() for c in TASK.ideal_calls])] * 2,
        task_id=[TASK.id, TASK.id],
        tools=[openai_tools, openai_tools],
    )
    good = direct_trace(
        [call_step(0, {"city": "Paris"}, "sunny, 24 C"), answer_step(1)], "It is sunny in Paris."
    )
    assert values == [expected(name, good), expected(name, direct_trace([call_step(0, {"city": 7})], None))]


def test_rows_without_a_task_or_that_cannot_be_scored_get_none() -> None:
    outcome, tool_syntax = trl_reward_functions(["outcome", "tool_syntax"])
    no_answer = Task(id="open", prompt="Say hi")
    values = trainer_call(outcome, ["hi", "hi"], [ANSWER, ANSWER], task=[None, no_answer.model_dump()])
    assert values == [None, None]  # no task columns; a task with no expected answer
    assert trainer_call(tool_syntax, ["hi"], [ANSWER], task=[no_answer.model_dump()]) == [0.0]


def test_a_group_of_samples_per_prompt_scores_each_sample() -> None:
    (outcome,) = trl_reward_functions(["outcome"])
    completions = [ANSWER, "<answer>rainy</answer>", "<answer>SUNNY!</answer>", "no tags, sunny"]
    values = trainer_call(outcome, [TASK.prompt] * 4, completions, task=[TASK.model_dump()] * 4)
    assert values == [1.0, 0.0, 1.0, 1.0]
    assert not any(isinstance(v, float) and math.isnan(v) for v in values)


def test_bad_columns_are_a_persons_error() -> None:
    (outcome,) = trl_reward_functions(["outcome"])
    with pytest.raises(ConfigError, match="one value per completion"):
        trainer_call(outcome, ["a", "b"], [ANSWER, ANSWER], task=[TASK.model_dump()])
    with pytest.raises(ConfigError, match="row 0"):
        trainer_call(outcome, ["a"], [ANSWER], task=['{"id": "no prompt"}'])
    with pytest.raises(SandboxError, match="unknown reward"):
        trl_reward_functions(["outcome", "nope"])
