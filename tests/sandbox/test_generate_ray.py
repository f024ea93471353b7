"""``sandbox generate --ray``: the pairs of a run sharded over a local Ray instance (loopback only),
each worker with its own real model and servers, traces landing in the one run folder."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import anyio
import pytest

from sandbox.runs import generate
from tests.sandbox.run_fixtures import TASKS, options

pytestmark = pytest.mark.model
N = 2


@pytest.fixture(scope="module")
def ray_instance() -> Iterator[object]:
    ray = pytest.importorskip("ray")
    from sandbox.runs import init_ray

    init_ray("local", num_cpus=2)
    yield ray
    ray.shutdown()


def _pairs(run: Path) -> Counter[tuple[str, int]]:
    lines = (run / "traces.jsonl").read_text(encoding="utf-8").splitlines()
    return Counter((json.loads(line)["task_id"], json.loads(line)["sample"]) for line in lines)


def test_two_workers_fill_one_run_folder_and_resume_it(ray_instance: object, tmp_path: Path) -> None:
    run_options = options(
        tmp_path,
        n=N,
        ray="local",
        ray_workers=2,
        max_tokens=96,
        token_budget=192,
        max_steps=2,
        temperature=0.8,
    )
    summary = anyio.run(generate, run_options)
    expected = Counter({(task.id, sample): 1 for task in TASKS for sample in range(N)})
    assert _pairs(run_options.out) == expected  # n per task, none twice, none lost
    assert summary.written == len(TASKS) * N
    assert any("2 Ray worker(s)" in note for note in summary.notes)
    config = json.loads((run_options.out / "config.json").read_text())
    assert config["n"] == N

    # lose the last two traces and leave half a line, as a killed run would: a resume on Ray fills them in
    traces = run_options.out / "traces.jsonl"
    lines = traces.read_text(encoding="utf-8").splitlines(keepends=True)
    traces.write_text("".join(lines[:-2]) + lines[-2][:40], encoding="utf-8")
    resumed = anyio.run(generate, replace(run_options, resume=True))
    assert resumed.written == 2
    assert _pairs(run_options.out) == expected
    assert list(run_options.out.glob("traces.jsonl.partial-*"))  # the cut bytes are kept


def test_a_missing_model_is_refused_before_any_worker_starts(ray_instance: object, tmp_path: Path) -> None:
    from sandbox.records import ModelFileError

    run_options = options(tmp_path, n=1, ray="local", model=tmp_path / "missing.gguf")
    with pytest.raises(ModelFileError, match=r"missing\.gguf"):
        anyio.run(generate, run_options)
