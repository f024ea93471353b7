"""ProcessBench metric of the bundled step graders on real, human-labelled solutions.

Grades every step of ``processbench_dev.jsonl`` (300 ProcessBench solutions: 100 GSM8K, 200 MATH)
with the rule PRM and the verifier PRM, and a subset with the judge PRM (the embedded SmolLM2-135M,
or ``--judge MODEL.gguf``; a model is slow on CPU). Each solution is reduced to its earliest step
graded below 0.5 (the threshold is fixed, never tuned) and scored the ProcessBench way: accuracy on
the erroneous solutions, on the correct ones, and their F1, by source. Next to them, two baselines:
always -1, and flagging the last step exactly when the final answer is wrong. AUROC: how well the
grades separate each erroneous solution's earliest wrong step from the steps before it.

Rows are reported in halves: the verifier's parser was developed on the even lines (0-based) of the
file and never on the odd ones, so the odd half is the held-out figure. Last, the cost of the
verifier's process reward on looping traces of 1,000 and 10,000 steps.

With ``--judge-base-url URL`` the judge is a model behind an OpenAI-compatible server (it must
return ``top_logprobs``). With ``--mc-solutions N``, Monte Carlo step values (Math-Shepherd):
``--mc-k`` continuations of at most ``--mc-max-tokens`` tokens from every step by the policy
(``--mc-model``, default the embedded model), on N solutions whose right answer is known (the
correct solutions' own boxed answer; an erroneous solution's from a correct solution of the same
problem), half erroneous, with the cost per solution in seconds and generated tokens.

    PYTHONPATH=. python bench/bench_prm.py [--data processbench_dev.jsonl] [--judge MODEL.gguf |
        --judge-base-url URL] [--judge-solutions 40] [--mc-solutions 8 --mc-k 4 --mc-max-tokens 96]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from rewards import JudgePRM, MonteCarloPRM, ProcessRewardModel, RulePRM, VerifierPRM, grade_all
from rewards._montecarlo import final_answer
from rewards._processbench import (
    ERROR_THRESHOLD,
    NO_ERROR,
    Solution,
    earliest_error,
    grade_solution,
    load_solutions,
    processbench_f1,
    step_auroc,
)
from rewards._verifier import cot_verifier, process_verifier
from sandbox.models import BatchedLlamaModel, LlamaScorer, OpenAIScorer, PolicyRollouts
from sandbox.records import ModelInfo, SandboxError, Step, Task, ToolCall, ToolResult, Trace

# ../shared/data beside the checkout (a worktree sits one level deeper: look upwards).
DEFAULT_DATA = next(
    (
        folder / "shared" / "data" / "processbench_dev.jsonl"
        for folder in Path(__file__).resolve().parents[1:]
        if (folder / "shared" / "data" / "processbench_dev.jsonl").exists()
    ),
    Path(__file__).resolve().parents[1].parent / "shared" / "data" / "processbench_dev.jsonl",
)
SOURCES = ("gsm8k", "math")
LOOP_STEPS = (1_000, 10_000)

Predictor = Callable[[Solution], int]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="ProcessBench JSON lines")
    parser.add_argument("--judge", help="judge GGUF (default: the embedded SmolLM2-135M)")
    parser.add_argument(
        "--judge-solutions", type=int, default=40, help="judged solutions: a quarter per source and kind"
    )
    parser.add_argument("--judge-base-url", help="OpenAI-compatible server of the judge instead of --judge")
    parser.add_argument("--judge-api-model", help="the judge's model on that server (default: the first)")
    parser.add_argument("--threads", type=int, default=None, help="llama.cpp threads (default: all cores)")
    parser.add_argument("--mc-solutions", type=int, default=0, help="solutions for Monte Carlo values")
    parser.add_argument("--mc-k", type=int, default=4, help="continuations from each step")
    parser.add_argument("--mc-max-tokens", type=int, default=96, help="tokens per continuation")
    parser.add_argument("--mc-model", help="policy GGUF for the continuations (default: embedded)")
    args = parser.parse_args()
    try:
        run(args)
    except SandboxError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from exc


def run(args: argparse.Namespace) -> None:
    solutions = load_solutions(args.data)
    print(f"{args.data}: {len(solutions)} solutions; error threshold {ERROR_THRESHOLD}, fixed")
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    print(f"machine: {machine}, load {_load()}")
    halves = {
        "held-out half (odd lines, never used to develop the parser)": solutions[1::2],
        "development half (even lines)": solutions[0::2],
        "all rows": solutions,
    }
    predictors: dict[str, Predictor] = {
        "baseline: always -1": lambda _: NO_ERROR,
        "baseline: last step iff wrong": _last_if_wrong,
    }
    graded: dict[str, dict[str, list[float]]] = {}
    for prm in (RulePRM(), VerifierPRM()):
        graded[prm.name], seconds = _grade_all(prm, solutions)
        print(f"{prm.name} v{prm.version}: {seconds:.1f} s for {sum(len(s.steps) for s in solutions)} steps")
    for title, rows in halves.items():
        _table(title, rows, graded, predictors)
    _judge(args, solutions[1::2], graded, predictors)
    _monte_carlo(args, solutions, graded, predictors)
    if args.mc_solutions <= 0:
        _loop_cost()


def _last_if_wrong(solution: Solution) -> int:
    return len(solution.steps) - 1 if solution.final_answer_correct is False else NO_ERROR


def _grade_all(
    prm: ProcessRewardModel, solutions: Sequence[Solution]
) -> tuple[dict[str, list[float]], float]:
    started = time.perf_counter()
    grades = {solution.id: grade_solution(prm, solution) for solution in solutions}
    return grades, time.perf_counter() - started


def _table(
    title: str,
    rows: Sequence[Solution],
    graded: dict[str, dict[str, list[float]]],
    predictors: dict[str, Predictor],
) -> None:
    by_source = {source: [s for s in rows if s.source == source] for source in SOURCES}
    counts = ", ".join(
        f"{source} {len(items)} ({sum(s.label != NO_ERROR for s in items)} erroneous)"
        for source, items in by_source.items()
    )
    print(f"\n{title}: {counts}")
    header = "".join(f" | {source + ' err/corr/F1':>20} {'AUROC':>5}" for source in SOURCES)
    print(f"{'grader':<30}{header}")
    for name, grades in graded.items():
        cells = [
            _cell(items, lambda s, g=grades: earliest_error(g[s.id]), grades) for items in by_source.values()
        ]
        print(f"{name:<30}{''.join(cells)}")
    for name, predict in predictors.items():
        print(f"{name:<30}{''.join(_cell(items, predict, None) for items in by_source.values())}")


def _cell(items: Sequence[Solution], predict: Predictor, grades: dict[str, list[float]] | None) -> str:
    if not items:
        return f" | {'-':>20} {'-':>5}"
    score = processbench_f1([predict(s) for s in items], [s.label for s in items])
    auroc = None if grades is None else step_auroc([grades[s.id] for s in items], [s.label for s in items])
    figures = f"{100 * score.error_accuracy:.1f} / {100 * score.correct_accuracy:.1f} / {100 * score.f1:.1f}"
    return f" | {figures:>20} {'-' if auroc is None else f'{auroc:.2f}':>5}"


def _judge(
    args: argparse.Namespace,
    held_out: Sequence[Solution],
    graded: dict[str, dict[str, list[float]]],
    predictors: dict[str, Predictor],
) -> None:
    if args.judge_solutions <= 0:
        return
    if args.judge is None and args.judge_base_url is None:
        from sandbox.models import default_model_path

        args.judge = default_model_path()
    per_kind = args.judge_solutions // (2 * len(SOURCES))
    subset = [
        solution
        for source in SOURCES
        for erroneous in (True, False)
        for solution in [s for s in held_out if s.source == source and (s.label != NO_ERROR) == erroneous][
            :per_kind
        ]
    ]
    backend = (
        OpenAIScorer(args.judge_base_url, model=args.judge_api_model)
        if args.judge_base_url is not None
        else LlamaScorer(args.judge, n_threads=args.threads)
    )
    judge = JudgePRM(backend)
    grades, seconds = _grade_all(judge, subset)
    steps = sum(len(s.steps) for s in subset)
    title = (
        f"judge subset: the first {per_kind} erroneous and {per_kind} correct solutions of each source "
        "of the held-out half "
        f"({judge.name} v{judge.version}: {seconds:.0f} s for {steps} steps, {seconds / steps:.2f} s a step)"
    )
    _table(title, subset, {judge.name: grades, **graded}, predictors)


def _monte_carlo(
    args: argparse.Namespace,
    solutions: Sequence[Solution],
    graded: dict[str, dict[str, list[float]]],
    predictors: dict[str, Predictor],
) -> None:
    if args.mc_solutions <= 0:
        return
    answers = known_answers(solutions)
    half = args.mc_solutions // 2
    erroneous = [s for s in solutions if s.label != NO_ERROR and s.id in answers][:half]
    correct = [s for s in solutions if s.label == NO_ERROR and s.id in answers][: args.mc_solutions - half]
    subset = erroneous + correct
    model = BatchedLlamaModel(args.mc_model, n_seq=args.mc_k, n_ctx=4096, n_threads=args.threads)
    rollouts = PolicyRollouts(model, max_tokens=args.mc_max_tokens)
    prm = MonteCarloPRM(rollouts, k=args.mc_k)
    started = time.perf_counter()
    grades = {}
    for solution in subset:
        task = Task(
            id=solution.id, prompt=solution.problem, expected_answer=answers[solution.id], answer_match="math"
        )
        grades[solution.id] = grade_all(prm, task, solution.step_records())
    seconds = time.perf_counter() - started
    model.close()
    steps = sum(len(s.steps) for s in subset)
    title = (
        f"Monte Carlo subset: {len(erroneous)} erroneous and {len(correct)} correct solutions with a known "
        f"answer ({prm.name} v{prm.version}; k = {args.mc_k}, at most {args.mc_max_tokens} tokens each; "
        f"{steps} steps; per solution {seconds / len(subset):.0f} s and "
        f"{rollouts.tokens / len(subset):.0f} generated tokens)"
    )
    _table(title, subset, {prm.name: grades, **graded}, predictors)


def known_answers(solutions: Sequence[Solution]) -> dict[str, str]:
    """Each solution's right answer where the file shows it: a correct solution's last boxed answer,
    given to every solution of the same problem."""
    by_problem: dict[str, str] = {}
    for solution in solutions:
        if solution.final_answer_correct and solution.label == NO_ERROR:
            boxed = final_answer("\n".join(solution.steps))
            if boxed is not None:
                by_problem.setdefault(solution.problem, boxed)
    return {s.id: by_problem[s.problem] for s in solutions if s.problem in by_problem}


def _loop_cost() -> None:
    """Seconds for the verifier's process and CoT rewards on long traces, and per-step ratios."""
    print("\nverifier cost on long traces: one call repeated (a loop), or a new call each step")
    rewards = {"process_verifier": process_verifier, "cot_verifier": cot_verifier}
    for distinct in (False, True):
        per_step: dict[str, list[float]] = {name: [] for name in rewards}
        for steps in LOOP_STEPS:
            trace, task = _long_trace(steps, distinct=distinct)
            for name, reward in rewards.items():
                started = time.perf_counter()
                reward(trace, task)
                seconds = time.perf_counter() - started
                per_step[name].append(seconds / steps)
                kind = "new calls" if distinct else "loop"
                print(f"  {kind:<9} {name:<17} {steps:>6} steps: {seconds:7.2f} s")
        for name, times in per_step.items():
            ratio = times[-1] / times[0]
            print(
                f"  {'':<9} {name:<17} time a step, {LOOP_STEPS[-1]:,} / {LOOP_STEPS[0]:,} steps: {ratio:.2f}"
            )


def _long_trace(steps: int, *, distinct: bool) -> tuple[Trace, Task]:
    """Failing calls whose thoughts restate 2 + 2 = 4: the same call each step, or a new one."""
    task = Task(id="loop", prompt="What is 2 + 2?", expected_answer="4", answer_match="number")
    thought = "2 + 2 = 4. This is a great example of how math can be used to solve problems"
    loop = [
        Step(
            index=index,
            raw_text="",
            thought=f"{thought} ({index}).",
            action="tool_call",
            call=ToolCall(
                id=f"c{index}", name="calculate", arguments={"expression": f"{index if distinct else 2} + 2"}
            ),
            result=ToolResult(text="error", is_error=True, error_kind="tool_error"),
        )
        for index in range(steps)
    ]
    trace = Trace(
        id="loop",
        task_id=task.id,
        task=task,
        model=ModelInfo(name="loop"),
        steps=loop,
        stop_reason="max_steps",
    )
    return trace, task


def _load() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


if __name__ == "__main__":
    main()
