"""Answers that hedge, negate or name a wrong answer fail; right answers, phrased naturally, pass.

The seed suite's own failure stories are scored on the shipped seed tasks; the properties hold for
any task.
"""

from __future__ import annotations

import functools
import json
import tempfile
from pathlib import Path
from typing import Any

import anyio
import pytest
from _reward_builders import answer, call, task, trace
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from rewards import (
    AnswerSpecError,
    RulePRM,
    answers_match,
    cot_reward,
    outcome_reward,
    process_mean_reward,
    process_reward,
)
from rewards._outcome import judge
from rewards._words import NEGATIONS, read_words, tokens
from sandbox.records import Step, Task, read_tasks

SEED = {
    seed.id: seed
    for seed in read_tasks(Path(__file__).resolve().parents[2] / "sandbox" / "data" / "seed.jsonl")
}


@functools.cache
def solved_state(task_id: str) -> str:
    """The state (as JSON) the task's reference solution leaves on the real server, read through its
    resources: what a right episode of a state task records, so its answers can be judged here."""
    from mcp import Client

    from servers.files import make_server as files_server
    from servers.music import make_server as music_server

    seed = SEED[task_id]
    makers = {"music": music_server, "files": lambda: files_server(tempfile.mkdtemp(prefix="honest-"))}

    async def run() -> dict[str, Any]:
        (server,) = seed.servers
        state: dict[str, Any] = {}
        async with Client(makers[server]()) as client:
            for step in seed.solution:
                assert not (await client.call_tool(step.name, step.arguments)).is_error
            for name, uri in seed.state_resources:
                text = (await client.read_resource(uri)).contents[0].text  # type: ignore[union-attr]
                state.setdefault(name, {})[uri] = json.loads(text)
        return state

    return json.dumps(anyio.run(run))


def outcome(task_id: str, final: str) -> float | None:
    """The outcome of the seed's reference calls (each answered "ok") followed by ``final``."""
    seed = SEED[task_id]
    calls = [call(index, step.name, step.arguments) for index, step in enumerate(seed.solution)]
    the_trace = trace(seed, [*calls, answer(len(calls), final)])
    if seed.expected_state:
        the_trace = the_trace.model_copy(update={"final_state": json.loads(solved_state(task_id))})
    return outcome_reward(the_trace, seed).value


# --------------------------------------------------------------------------- the seed's stories


@pytest.mark.parametrize(
    ("task_id", "final"),
    [
        ("weather-denver-outfit-tonight", "It won't be warm at all, a t-shirt is fine."),
        ("music-play-toxic", "Playing Toxic by Britney Spears (not BoyWithUke)."),
        ("no-tool-capital-of-france", "Lyon, Marseille or Paris"),
        ("calc-fraction-sum", "Not 1/2; it is 2/3"),
    ],
)
def test_the_documents_failure_stories_fail(task_id: str, final: str) -> None:
    assert outcome(task_id, final) == 0.0
    seed = SEED[task_id]
    assert cot_reward(trace(seed, [answer(0, final)]), seed).value == -1.0


@pytest.mark.parametrize(
    ("task_id", "final"),
    [
        ("weather-denver-outfit-tonight", "It won't be warm at all."),  # negation alone
        ("music-play-toxic", "Playing Toxic (not the BoyWithUke one)."),  # negation alone
        ("no-tool-capital-of-france", "It's either Paris or Berlin."),  # a rival no distractor lists
        ("calc-fraction-sum", "1/2 or maybe 2/3"),
    ],
)
def test_each_rule_catches_its_story_on_its_own(task_id: str, final: str) -> None:
    assert outcome(task_id, final) == 0.0


@pytest.mark.parametrize(
    ("task_id", "final"),
    [
        ("weather-denver-temp-8pm", "35"),
        ("weather-paris-high-tomorrow", "46"),
        ("music-most-played-today", "Toxic"),
    ],
)
def test_a_right_answer_no_call_backs_is_a_guess(task_id: str, final: str) -> None:
    seed = SEED[task_id]
    assert seed.evidence
    assert outcome(task_id, final) == 1.0  # after the reference calls
    guessed = outcome_reward(trace(seed, [answer(0, final)]), seed)
    assert guessed.value == 0.0 and guessed.components["grounded"] == 0.0
    assert guessed.reason.startswith("no evidence") and seed.evidence[0].name in guessed.reason
    solution = seed.solution[0]
    refused = [call(0, solution.name, solution.arguments, error_kind="tool_error"), answer(1, final)]
    assert outcome_reward(trace(seed, refused), seed).value == 0.0  # the server refused the call
    after = [answer(0, final), call(1, solution.name, solution.arguments)]
    assert outcome_reward(trace(seed, after, final_answer=final), seed).value == 0.0  # read too late
    assert cot_reward(trace(seed, [answer(0, final)]), seed).value == -1.0


def test_evidence_for_another_place_is_no_evidence() -> None:
    seed = SEED["weather-denver-temp-8pm"]
    (solution,) = seed.solution
    elsewhere = {**solution.arguments, "location": "Boston"}
    steps = [call(0, solution.name, elsewhere), answer(1, "35")]
    assert outcome_reward(trace(seed, steps), seed).value == 0.0
    steps = [call(0, solution.name, elsewhere), call(1, solution.name, solution.arguments), answer(2, "35")]
    grounded = outcome_reward(trace(seed, steps), seed)
    assert grounded.value == 1.0 and grounded.components["grounded"] == 1.0


def test_a_task_without_evidence_is_judged_on_its_answer_alone() -> None:
    seed = SEED["calc-percent-of"]
    assert not seed.evidence and seed.ideal_calls
    assert outcome_reward(trace(seed, [answer(0, str(seed.acceptable_answers[0]))]), seed).value == 1.0


NATURAL_RIGHT_ANSWERS = {
    "weather-denver-outfit-tonight": [
        "It will be about 35°F and windy at 8pm, so wear a warm coat.",
        "Bring a jacket: a cold front arrives at dusk and it will feel like 30°F.",
        "Dress in layers and take a coat or a jacket.",
        "Despite the sunny afternoon, dress warmly tonight.",
    ],
    "weather-denver-temp-8pm": ["At 8pm it will be 35°F in Denver.", "35"],
    "weather-denver-feels-like-8pm": ["It will feel like 30°F with the wind."],
    "weather-paris-high-tomorrow": ["Tomorrow's high in Paris is 46°F."],
    "weather-boston-snow-chance": ["There is a 60% chance of snow in Boston tomorrow.", "60%"],
    "weather-denver-temp-swing": ["The high is 66°F and the low 33°F, so they are 33 degrees apart."],
    "music-play-toxic": ["Now playing Toxic by BoyWithUke.", "Playing Toxic by BoyWithUke (lib-001)."],
    "music-play-circles": ["Now playing Circles by Post Malone, from Hollywood's Bleeding."],
    "music-play-womanizer-now-playing": ["Now playing: Womanizer by Britney Spears."],
    "music-most-played-today": ["Toxic by BoyWithUke: you played it 4 times today."],
    "music-last-played": ["The last song you listened to was Sweater Weather by The Neighbourhood."],
    "calc-pens-word-problem": ["17 × 24 = 408 pens, and 408 − 39 = 369 pens are left."],
    "calc-percent-of": ["15% of 240 is 36."],
    "calc-fraction-sum": ["1/3 + 1/6 = 2/6 + 1/6 = 3/6 = 1/2", "It is one half."],
    "calc-two-to-the-64": ["2^64 = 18446744073709551616"],
    "no-tool-two-plus-two": ["2 + 2 = 4", "The answer is 4."],
    "no-tool-capital-of-france": ["The capital of France is Paris.", "Paris"],
}


def test_every_seed_task_has_natural_right_answers_here() -> None:
    assert set(NATURAL_RIGHT_ANSWERS) == {seed.id for seed in SEED.values() if seed.acceptable_answers}


@pytest.mark.parametrize(
    ("task_id", "final"), [(key, final) for key, finals in NATURAL_RIGHT_ANSWERS.items() for final in finals]
)
def test_natural_right_answers_to_every_seed_task_pass(task_id: str, final: str) -> None:
    assert outcome(task_id, final) == 1.0


def test_every_seed_task_with_a_text_answer_lists_distractors() -> None:
    text = [
        seed
        for seed in SEED.values()
        if seed.answer_match in ("exact", "contains") and seed.acceptable_answers
    ]
    assert text and all(seed.distractors for seed in text)
    for seed in text:
        for wrong in seed.distractors:
            assert outcome(seed.id, wrong) == 0.0, (seed.id, wrong)


# --------------------------------------------------------------------------- the looping 2+2 episode

LOOP_THOUGHT = " ".join(["This is a great example of how math can be used to solve problems."] * 10)


def looping_two_plus_two() -> tuple[Task, list[Step]]:
    """Six identical failing calculator calls, each after the same 150-token thought; no answer."""
    seed = SEED["no-tool-two-plus-two"]
    steps = [
        call(index, "calculate", {"expression": "2 + 2"}, error_kind="tool_error").model_copy(
            update={"thought": LOOP_THOUGHT}
        )
        for index in range(6)
    ]
    return seed, steps


def test_the_looping_episode_is_verbose_and_paid_nothing_for_its_loop() -> None:
    seed, steps = looping_two_plus_two()
    looping = trace(seed, steps)
    right = trace(seed, [answer(0, "2 + 2 = 4")])
    assert RulePRM().evaluate(looping, seed).verbosity > 0.5
    assert RulePRM().evaluate(right, seed).verbosity < 0.5
    loop_process = process_reward(looping, seed)
    assert loop_process.per_step == [0.3, 0.0, 0.0, 0.0, 0.0, 0.0]
    assert loop_process.value is not None and loop_process.value < 1.0
    assert process_reward(right, seed).value == 2.0
    assert process_mean_reward(looping, seed).value == pytest.approx(0.05)
    assert process_mean_reward(right, seed).value == 2.0


def test_a_looping_answer_is_verbose_however_short() -> None:
    seed = SEED["no-tool-two-plus-two"]
    steps = [answer(0, "4").model_copy(update={"thought": " ".join(["2 + 2 = 4, so 4."] * 4)})]
    assert RulePRM().evaluate(trace(seed, steps), seed).verbosity > 0.5


def test_two_plus_two_in_ten_thousand_words_is_verbose_and_concise_is_not() -> None:
    seed = SEED["no-tool-two-plus-two"]
    wordy = " ".join(f"word{index}" for index in range(10_000)) + " so the answer is 4"
    long_reward = cot_reward(trace(seed, [answer(0, wordy)]), seed)
    assert long_reward.components["verbosity"] == 1.0
    assert long_reward.components["verbosity_penalty"] == -0.2
    short = cot_reward(trace(seed, [answer(0, "2 + 2 = 4.")]), seed)
    assert short.components["verbosity"] < 0.5 and short.value == 1.2


def test_the_length_free_variant_pays_ten_good_steps_no_more_than_one() -> None:
    seed = task(expected="4", match="number")
    one = trace(seed, [call(0, "add", {"a": 2, "b": 2}), answer(1, "4")])
    many = trace(seed, [*[call(i, "add", {"a": i, "b": 2}) for i in range(10)], answer(10, "4")])
    assert process_mean_reward(one, seed).value == process_mean_reward(many, seed).value == 2.0
    assert process_reward(many, seed).value == 12.0  # the literal sum still counts length


# --------------------------------------------------------------------------- symbols, negation, alternatives


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("<title>Test page</title>", "Test page"),
        ("+world", "world"),
        ("heading=Hello MCP", "Hello MCP"),
        ("It costs $5.", "5"),
        ("It costs $5.", "$5"),
        ("diff: -old +new", "new"),
        ("½", "1/2"),
    ],
)
def test_words_glued_to_symbols_are_still_words(given: str, expected: str) -> None:
    assert answers_match(given, [expected], "contains")


def test_symbols_still_tell_answers_apart() -> None:
    assert not answers_match("C#", ["C++"], "contains")
    assert answers_match("I like C++.", ["C++"], "contains")
    assert not answers_match("$5", ["€5"], "exact")


def test_the_tokens_and_their_structure() -> None:
    assert tokens("It won't be the warm one") == ("it", "wo", "not", "be", "warm", "one")
    words = read_words("No, it is Paris (not Lyon). Or Nice")
    paris, lyon, nice = (words.tokens.index(name) for name in ("paris", "lyon", "nice"))
    assert not words.negated(paris) and words.negated(lyon) and not words.negated(nice)
    assert words.clauses[nice] == words.clauses[paris]  # "Or ..." continues the clause
    assert words.clauses[paris] in words.offering


@pytest.mark.parametrize(
    "given",
    ["It is not Paris.", "Never Paris", "It won't be Paris", "(not Paris)", "Lyon, not Paris"],
)
def test_a_negated_right_answer_does_not_count(given: str) -> None:
    assert not answers_match(given, ["Paris"], "contains")


@pytest.mark.parametrize("given", ["No, it is Paris.", "Not Lyon but Paris", "Lyon? No. Paris."])
def test_a_negation_elsewhere_does_not_touch_the_answer(given: str) -> None:
    assert answers_match(given, ["Paris"], "contains")


@pytest.mark.parametrize(
    "given", ["Paris or Lyon", "It's Paris, or maybe Berlin", "Berlin or Paris", "Either Rome or Paris."]
)
def test_an_answer_offering_a_rival_fails(given: str) -> None:
    assert not answers_match(given, ["Paris"], "contains")


@pytest.mark.parametrize(
    "given",
    ["a coat or a jacket", "Wear a coat or you will freeze", "a coat, not a t-shirt", "coat (or jacket)"],
)
def test_alternatives_that_are_right_or_no_candidates_pass(given: str) -> None:
    assert answers_match(given, ["coat", "jacket"], "contains", ["t-shirt"])


def test_a_named_distractor_fails_even_beside_the_right_answer() -> None:
    assert not answers_match("BoyWithUke, or Britney Spears", ["BoyWithUke"], "contains", ["Britney"])
    assert not answers_match("BoyWithUke. Britney Spears too.", ["BoyWithUke"], "contains", ["Britney"])
    assert answers_match("BoyWithUke, not Britney Spears", ["BoyWithUke"], "contains", ["Britney"])


@pytest.mark.parametrize(
    ("given", "correct"),
    [
        ("3 or 4", False),
        ("It is 4, not 3.", True),
        ("It is 3, not 4.", False),
        ("40, not 4", False),
        ("2 + 2 = 4 (or 5)", False),
        ("4 or four", True),
        ("Not 5. 4.", True),
    ],
)
def test_numbers_read_the_last_number_not_negated_and_refuse_rivals(given: str, correct: bool) -> None:
    assert answers_match(given, ["4"], "number") == correct


def test_a_number_distractor_fails_wherever_it_is_stated() -> None:
    assert not answers_match("35, or 30 with the wind, so 35", ["35"], "number", ["30"])
    assert answers_match("35, not 30", ["35"], "number", ["30"])


def test_exact_and_math_name_the_distractor_given() -> None:
    assert judge("Lyon", ["Paris"], "exact", ["Lyon"]).reason == "gives the wrong answer 'Lyon'"
    assert (
        judge("\\frac{2}{3}", ["1/2"], "math", ["0.666...", "2/3"]).reason == "gives the wrong answer '2/3'"
    )


@pytest.mark.parametrize("mode", ["exact", "contains", "number", "math"])
def test_a_distractor_that_is_also_acceptable_is_the_tasks_fault(mode: str) -> None:
    with pytest.raises(AnswerSpecError, match="also an acceptable answer"):
        answers_match("4", ["4"], mode, ["4"])  # type: ignore[arg-type]


def test_a_task_whose_distractor_is_acceptable_cannot_be_scored() -> None:
    broken = task(expected="Paris", match="contains").model_copy(update={"distractors": ["paris!"]})
    reward = outcome_reward(trace(broken, [answer(0, "Paris")]), broken)
    assert reward.value is None and "also an acceptable answer" in reward.reason


def test_a_non_number_distractor_under_number_is_the_tasks_fault() -> None:
    with pytest.raises(AnswerSpecError, match="distractor 'thirty' is not a number"):
        answers_match("35", ["35"], "number", ["thirty"])


# --------------------------------------------------------------------------- properties

words = st.text(alphabet=st.characters(categories=["L", "N"]), min_size=1, max_size=8)
phrases = st.lists(words, min_size=1, max_size=3).map(" ".join)
texts = st.text(max_size=40)
text_modes = st.sampled_from(["exact", "contains"])


def usable(acceptable: list[str], distractors: list[str]) -> bool:
    """The answers hold words, none is a disjunction or negation, and no distractor is acceptable."""
    keys = [tokens(text) for text in [*acceptable, *distractors]]
    plain = all(key and not (NEGATIONS | {"or", "but"}) & set(key) for key in keys)
    return plain and not {tokens(text) for text in acceptable} & {tokens(text) for text in distractors}


@settings(max_examples=300, deadline=None)
@given(
    st.lists(phrases, min_size=1, max_size=3),
    st.lists(phrases, min_size=1, max_size=3),
    st.data(),
    text_modes,
)
def test_a_listed_distractor_never_passes(
    acceptable: list[str], distractors: list[str], data: st.DataObject, mode: str
) -> None:
    assume(usable(acceptable, distractors))
    wrong = data.draw(st.sampled_from(distractors))
    around = data.draw(
        st.sampled_from(["{}", "It is {}.", "{}!", "I think: {}", "{}, {right}", "{right} or {}"])
    )
    given_text = around.format(wrong, right=acceptable[0])
    assert not answers_match(given_text, acceptable, mode, distractors)  # type: ignore[arg-type]


@settings(max_examples=300, deadline=None)
@given(
    texts | phrases,
    st.lists(phrases, min_size=1, max_size=3),
    st.lists(phrases, max_size=3),
    phrases,
    st.sampled_from(["{} or {wrong}", "{wrong} or {}", "{} (or {wrong})", "either {wrong} or {}"]),
    text_modes,
)
def test_adding_a_wrong_candidate_never_raises_the_outcome(
    given_text: str, acceptable: list[str], distractors: list[str], wrong: str, form: str, mode: str
) -> None:
    assume(usable(acceptable, distractors) and not answers_match(wrong, acceptable, "contains"))
    before = answers_match(given_text, acceptable, mode, distractors)  # type: ignore[arg-type]
    hedged = form.format(given_text, wrong=wrong)
    assert answers_match(hedged, acceptable, mode, distractors) <= before  # type: ignore[arg-type]


@settings(max_examples=300, deadline=None)
@given(
    texts,
    st.integers(0, 99).filter(lambda number: number != 4),
    st.sampled_from(["{} or {wrong}", "{wrong} or {}", "{} (or {wrong})", "either {wrong} or {}"]),
)
def test_adding_a_wrong_number_never_raises_the_outcome(given_text: str, wrong: int, form: str) -> None:
    before = answers_match(given_text, ["4"], "number", ["5"])
    hedged = form.format(given_text, wrong=wrong)
    assert answers_match(hedged, ["4"], "number", ["5"]) <= before
    assert not answers_match(form.format("4", wrong=wrong), ["4"], "number")


_word = st.from_regex(r"[A-Za-z][a-z]{2,9}", fullmatch=True).filter(
    lambda w: (
        w.casefold()
        not in {"not", "no", "nor", "never", "neither", "without", "cannot", "or", "but", "the", "and"}
    )
)
_glue = st.sampled_from(["<", ">", "+", "=", "$", "#", "|", "~", "^", "`", "°", "©"])
_tags = st.sampled_from(["title", "h1", "b", "td", "span"])


@given(st.lists(_word, min_size=1, max_size=3), _glue, _glue)
@settings(max_examples=200)
def test_a_phrase_between_symbols_is_contained(phrase: list[str], left: str, right: str) -> None:
    text = " ".join(phrase)
    assert answers_match(left + text + right, [text], "contains")
    assert answers_match(f"key{left}{text}{right}value", [text], "contains")


@given(st.lists(_word, min_size=1, max_size=3), _tags)
@settings(max_examples=100)
def test_a_phrase_in_markup_is_contained_and_markup_does_not_hide_a_hedge(
    phrase: list[str], tag: str
) -> None:
    text = " ".join(phrase)
    marked = f"<{tag}>{text}</{tag}>"
    assert answers_match(marked, [text], "contains")
    assert answers_match(f"It is {marked}.", [text], "contains")
    assert not answers_match(f"not {marked}", [text], "contains")  # negation reads through markup
    rival = "Zzyzx"
    assert not answers_match(f"{marked} or <{tag}>{rival}</{tag}>", [text], "contains")
    assert not answers_match(f"{marked} (<{tag}>{rival}</{tag}>)", [text], "contains", [rival])
