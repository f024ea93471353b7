"""Traces for the viewer's tests, built from real records: seed tasks, the weather server's tool spec,
and steps and rewards shaped like those of a real run (``runs/seed.jsonl``)."""

from __future__ import annotations

from pathlib import Path

from sandbox.records import (
    ModelInfo,
    Reward,
    Step,
    ToolCall,
    ToolResult,
    ToolSpec,
    Trace,
    Usage,
    read_tasks,
)

SEED = read_tasks(Path(__file__).resolve().parents[2] / "sandbox" / "data" / "seed.jsonl")
TASKS = {task.id: task for task in SEED}

DAILY = ToolSpec(
    name="get_daily_forecast",
    description="Summary of one day: high, low, daytime conditions and chance of precipitation.",
    input_schema={
        "type": "object",
        "properties": {
            "location": {"type": "string", "minLength": 1, "maxLength": 100},
            "date": {"type": "string", "minLength": 1, "maxLength": 20},
        },
        "required": ["location", "date"],
    },
    server="weather",
)
MODEL = ModelInfo(name="Smollm2 135M 8k Lc100K Mix1 Ep2", n_ctx=4096, backend="llama.cpp")
NO_FORECAST = (
    "Error executing tool get_daily_forecast: No forecast for 2022-01-01. Forecasts exist for: "
    "2026-11-26, 2026-11-27, 2026-11-28 (today is 2026-11-26)."
)
FORECAST = '{"location": "Denver", "date": "2026-11-26", "high_f": 66, "low_f": 33, "conditions": "Sunny"}'


def call_step(index: int, arguments: dict[str, object], result: ToolResult, thought: str = "") -> Step:
    call = ToolCall(
        id=f"call_{index}", name=str(arguments.pop("_name", "get_daily_forecast")), arguments=arguments
    )
    return Step(
        index=index,
        raw_text=f"<think>{thought}</think><tool_call>...</tool_call>",
        thought=thought,
        action="tool_call",
        call=call,
        result=result,
        usage=Usage(completion_tokens=40),
        model_seconds=0.5,
    )


def broken_step(index: int) -> Step:
    raw = '<tool_call>\n{"name": "calculate", "arguments": {"expression": "15% of 240'
    return Step(
        index=index,
        raw_text=raw,
        action="broken_call",
        parse_error="tool call is not valid JSON: Unterminated string starting at at 50",
    )


def answer_step(index: int, answer: str, thought: str = "") -> Step:
    return Step(
        index=index, raw_text=f"<answer>{answer}</answer>", thought=thought, action="answer", answer=answer
    )


def make_trace(
    task_id: str,
    steps: list[Step],
    *,
    sample: int = 0,
    outcome: float | None = 0.0,
    tool_syntax: float | None = -1.0,
    final: str | None = None,
) -> Trace:
    """A trace of a seed task, with the two rewards every real run carries."""
    task = TASKS[task_id]
    stop = "answer" if final is not None else "max_steps"
    rewards = {
        "outcome": Reward(
            name="outcome",
            version="1",
            value=outcome,
            components={"matched": outcome or 0.0},
            reason="no expected answer"
            if outcome is None
            else f"answer {final!r} vs {task.expected_answer!r}",
        ),
        "tool_syntax": Reward(
            name="tool_syntax",
            version="1",
            value=tool_syntax,
            components={"steps_scored": float(len(steps))},
            per_step=[-1.0 if step.action != "answer" else None for step in steps],
            reason="the tool differs from the ideal one",
        ),
    }
    return Trace(
        id=f"{task_id}:{sample}:0000",
        task_id=task_id,
        task=task,
        sample=sample,
        model=MODEL,
        tools=[DAILY],
        steps=steps,
        final_answer=final,
        stop_reason=stop,
        rewards=rewards,
    )


def mixed_run() -> list[Trace]:
    """Three tasks, two samples each: a valid call, an error result, an unknown tool, a broken call,
    an invalid argument, and right and wrong answers."""
    ok = ToolResult(text=FORECAST)
    failed = ToolResult(text=NO_FORECAST, is_error=True, error_kind="tool_error")
    unknown = ToolResult(text="Unknown tool: get_weather. Available tools: get_daily_forecast", is_error=True)
    unknown = unknown.model_copy(update={"error_kind": "unknown_tool"})
    return [
        make_trace(
            "weather-denver-temp-8pm",
            [call_step(0, {"location": "Denver", "date": "today"}, ok), answer_step(1, "35")],
            outcome=1.0,
            tool_syntax=0.8,
            final="35",
        ),
        make_trace(
            "weather-denver-temp-8pm",
            [call_step(0, {"location": "Denver", "date": "2022-01-01"}, failed, "I check the forecast.")],
            sample=1,
        ),
        make_trace(
            "calc-percent-of",
            [broken_step(0), call_step(1, {"_name": "get_weather", "city": "x"}, unknown)],
            tool_syntax=-2.0,
        ),
        make_trace("calc-percent-of", [answer_step(0, "40")], sample=1, tool_syntax=-0.5, final="40"),
        make_trace(
            "no-tool-capital-of-france",
            [call_step(0, {"location": "Paris"}, ok)],  # "date" missing: invalid arguments
            tool_syntax=None,
        ),
        make_trace(
            "no-tool-capital-of-france", [answer_step(0, "Paris")], sample=1, outcome=1.0, final="Paris"
        ),
    ]
