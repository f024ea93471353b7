"""A judge behind an OpenAI-compatible server (``OpenAIScorer``, ``--judge-base-url``).

The score slot is read from replies of a scripted server (tests/fixtures/openai_stub.py) where the
reply must be exactly so, and from llama-cpp-python's own server with the embedded model for the
real thing (marked ``model``).
"""

from __future__ import annotations

import math
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rewards import JudgePRM
from rewards._judge import PROMPT_VERSION, SCORE_PREFIX, STEP_OPTIONS
from sandbox.models import OpenAIScorer
from sandbox.models._http_scorer import REPLY_INSTRUCTION, TOP_LOGPROBS, slot_logprobs
from sandbox.records import JudgeError, ModelInfo, Step, Task, Trace, read_traces, write_trace

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
TASK = Task(id="t", prompt="Tom has 3 apples and buys 4 more. How many does he have?")
STEPS = [
    Step(
        index=0, raw_text="He buys 4 more: 3 + 4 = 7.", action="answer", answer="He buys 4 more: 3 + 4 = 7."
    ),
    Step(index=1, raw_text="So he has 7 apples.", action="answer", answer="So he has 7 apples."),
]
TRACE = Trace(id="x", task_id="t", task=TASK, model=ModelInfo(name="m"), steps=STEPS, stop_reason="answer")
Cli = Callable[..., subprocess.CompletedProcess[str]]


import openai_stub as stub_module  # noqa: E402  (loaded by tests/conftest.py)


def position(token: str, logprob: float, top: dict[str, float]) -> dict[str, Any]:
    return {
        "token": token,
        "logprob": logprob,
        "top_logprobs": [{"token": t, "logprob": lp} for t, lp in top.items()],
    }


def scored_reply(content: list[dict[str, Any]]) -> dict[str, Any]:
    text = "".join(entry["token"] for entry in content)
    return stub_module.chat(text) | {
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": "stop",
                "logprobs": {"content": content},
            }
        ]
    }


@pytest.fixture
def stub() -> Iterator[Any]:
    with stub_module.StubServer() as server:
        yield server


# --------------------------------------------------------------------------- reading the slot


def test_the_slot_is_the_first_digit_after_the_reply_prefix() -> None:
    content = [
        position("Score", -0.1, {"Score": -0.1, "1": -3.0}),  # listed, but the judge writes "Score"
        position(":", -0.01, {":": -0.01}),
        position(" ", -0.2, {" ": -0.2, " 1": -1.9}),
        position("1", -0.3, {"1": -0.3, "0": -1.5, "x": -4.0}),  # written after "Score: ": the slot
    ]
    assert slot_logprobs(content, STEP_OPTIONS) == [-1.5, -0.3]
    assert slot_logprobs(content[3:], STEP_OPTIONS) == [-1.5, -0.3]  # a digit at once


def test_variants_of_an_option_add_up_and_a_missing_option_gets_the_floor() -> None:
    content = [position("1", -0.5, {"1": -0.5, " 1": -1.5, "yes": -2.0})]
    zero, one = slot_logprobs(content, STEP_OPTIONS)
    assert one == pytest.approx(math.log(math.exp(-0.5) + math.exp(-1.5)))
    assert zero == -2.0  # not listed: at most the smallest listed log-probability


def test_words_before_the_digit_are_fine_a_number_before_it_is_not() -> None:
    words = [position(t, -0.1, {t: -0.1, "1": -5.0}) for t in ("The", " answer", " is", " ")]
    digit = position("0", -0.4, {"0": -0.4, "1": -1.2})
    assert slot_logprobs([*words, digit], STEP_OPTIONS) == [-0.4, -1.2]
    number = [position(t, -0.1, {t: -0.1, "0": -6.0}) for t in ("Step", " ", "2", " is", " ")]
    zero, one = slot_logprobs([*number, digit], STEP_OPTIONS)
    assert zero == one == -6.0  # "2" came first: no slot, so the options are equally likely
    assert slot_logprobs([], STEP_OPTIONS) == [0.0, 0.0]


TOKENS = st.sampled_from(["0", "1", " 1", " 0", "Score", ":", " ", "x", "\n", "Score:"])
POSITIONS = st.lists(
    st.tuples(TOKENS, st.dictionaries(TOKENS, st.floats(-30, 0), min_size=1, max_size=6)), max_size=6
)


@given(POSITIONS)
def test_every_reply_gives_one_finite_logprob_per_option(raw: list[tuple[str, dict[str, float]]]) -> None:
    content = [position(token, top.get(token, -1.0), top) for token, top in raw]
    values = slot_logprobs(content, STEP_OPTIONS)
    assert len(values) == len(STEP_OPTIONS)
    assert all(math.isfinite(v) and v <= math.log(2) + 1e-9 for v in values)  # two variants at most
    listed = [lp for entry in content for lp in (e["logprob"] for e in [*entry["top_logprobs"], entry])]
    assert all(v >= min(listed, default=0.0) for v in values)  # never below what the reply lists


# --------------------------------------------------------------------------- the request


def test_the_request_is_greedy_asks_for_the_digit_and_for_logprobs(stub: Any) -> None:
    stub.default = stub_module.Reply(body=scored_reply([position("1", -0.2, {"1": -0.2, "0": -1.8})]))
    scorer = OpenAIScorer(stub.url)
    judge = JudgePRM(scorer)
    grade = judge.grade_step(TASK, STEPS[:1], STEPS[1])
    assert grade == pytest.approx(math.exp(-0.2) / (math.exp(-0.2) + math.exp(-1.8)))
    (body,) = stub.requests
    assert body["temperature"] == 0.0 and body["logprobs"] is True and body["top_logprobs"] == TOP_LOGPROBS
    assert body["model"] == "stub-model"
    system, user = body["messages"]
    assert system["role"] == "system" and user["role"] == "user"
    assert user["content"].endswith(REPLY_INSTRUCTION.format(prefix=SCORE_PREFIX.strip()))
    assert "Step 2: So he has 7 apples." in user["content"] and "Answer:" not in user["content"]
    assert judge.version.startswith(f"{PROMPT_VERSION}+stub-model@") and len(scorer.sha256) == 64


def test_several_questions_go_at_once_and_come_back_in_order(stub: Any) -> None:
    def answer(body: dict[str, Any]) -> Any:
        digit = "1" if "step 1 correct" in body["messages"][1]["content"] else "0"
        other = "0" if digit == "1" else "1"
        return stub_module.Reply(body=scored_reply([position(digit, -0.1, {digit: -0.1, other: -3.0})]))

    stub.default = answer
    judge = JudgePRM(OpenAIScorer(stub.url))
    first, second = (judge.grade_step(TASK, STEPS[:i], STEPS[i]) for i in (0, 1))
    assert first > 0.9 and second < 0.1
    attributes = judge.evaluate(
        TRACE,
        TASK,
    )
    assert len(stub.requests) == 2 + 5 and 0.0 <= attributes.helpfulness <= 1.0


def test_a_server_that_returns_no_logprobs_is_one_clear_error(stub: Any) -> None:
    stub.default = stub_module.Reply(body=stub_module.chat("1"))
    with pytest.raises(JudgeError, match="sent no token log-probabilities for stub-model"):
        JudgePRM(OpenAIScorer(stub.url)).grade_step(TASK, [], STEPS[0])


# --------------------------------------------------------------------------- the command line


def _traces(tmp_path: Path) -> Path:
    trace = TRACE
    path = tmp_path / "traces.jsonl"
    with path.open("w", encoding="utf-8") as handle:
        write_trace(handle, trace)
    return path


def test_score_with_a_judge_server(sandbox_cli: Cli, stub: Any, tmp_path: Path) -> None:
    stub.default = stub_module.Reply(body=scored_reply([position("1", -0.1, {"1": -0.1, "0": -2.5})]))
    out = tmp_path / "out.jsonl"
    done = sandbox_cli(
        "score", str(_traces(tmp_path)), "-o", str(out), "--rewards", "process_judge",
        "--judge-base-url", stub.url, "--judge-api-model", "stub-model",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    (trace,) = read_traces(out)
    reward = trace.rewards["process_judge"]
    expected = math.exp(-0.1) / (math.exp(-0.1) + math.exp(-2.5))
    assert "judge-2+stub-model@" in reward.version
    assert reward.per_step == pytest.approx([expected, expected])  # each step graded by the server
    assert len(stub.requests) == 2


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        (["--judge-api-model", "m"], "go with --judge-base-url"),
        (["--judge", "x.gguf", "--judge-base-url", "http://127.0.0.1:9"], "exclude each other"),
        (["--judge-base-url", "ftp://nowhere"], "must start with http"),
    ],
)
def test_bad_judge_options_are_one_line(
    sandbox_cli: Cli, tmp_path: Path, extra: list[str], says: str
) -> None:
    done = sandbox_cli("score", str(_traces(tmp_path)), "-o", str(tmp_path / "o.jsonl"), *extra)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 2 and len(lines) == 1 and says in lines[0], done.stderr


# --------------------------------------------------------------------------- a real server


@pytest.mark.model
def test_a_real_server_judges_steps(llama_server: str) -> None:
    scorer = OpenAIScorer(llama_server)
    judge = JudgePRM(scorer)
    first = judge.step_score(TASK, STEPS[:1], STEPS[1])
    again = judge.step_score(TASK, STEPS[:1], STEPS[1])  # from the server's prompt cache this time
    print(f"\n{judge.version}: P(correct) {first.value:.3f}, options' mass {first.mass:.3f}")
    # the server evaluates the repeat from its prompt cache, which moves the logits a little (0.007 seen)
    assert again.value == pytest.approx(first.value, abs=0.03)
    assert 0.0 <= first.value <= 1.0 and math.isclose(sum(first.probabilities), 1.0)
    assert first.mass > 0.01  # a slot was found: the options hold real probability there
    assert first.value != 0.5
    assert judge.version.startswith(f"{PROMPT_VERSION}+smollm2@")
