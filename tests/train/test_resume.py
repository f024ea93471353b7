"""A stopped training run continues from its checkpoint: real training steps on the embedded model.

Stopped by a first Ctrl-C (SIGINT, as a terminal sends it) or by a checkpoint the disk cannot take,
``--resume`` continues from the newest complete checkpoint to the same total steps, and ends with
the very adapter an uninterrupted run writes; changed options are refused in one line."""

from __future__ import annotations

import json
import os
import resource
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from sandbox.train import CheckpointError, ResumeRefused, TrainOptions, TrainProgress, train
from tests.train.train_fixtures import export, make_run

Cli = Callable[..., subprocess.CompletedProcess[str]]
pytestmark = [pytest.mark.train, pytest.mark.model]
ROOT = Path(__file__).resolve().parents[2]


def _tensors(adapter: Path) -> dict[str, np.ndarray]:
    import gguf

    return {tensor.name: np.array(tensor.data) for tensor in gguf.GGUFReader(adapter).tensors}


def _steps(path: Path) -> list[int]:
    return [json.loads(line)["step"] for line in path.read_text(encoding="utf-8").splitlines()]


def _losses(path: Path) -> list[float]:
    return [json.loads(line)["loss"] for line in path.read_text(encoding="utf-8").splitlines()]


def test_a_ctrl_c_run_resumes_to_the_same_steps_and_the_same_adapter(tmp_path: Path) -> None:
    from sandbox.models import LlamaModel

    # Four rows, one a step: the checkpoint falls mid-epoch, so a resume must skip the rows trained.
    rows = export(make_run(tmp_path / "gen", n=2), tmp_path / "sft", "sft")
    out = tmp_path / "train"
    pressed: list[int] = []

    def press_ctrl_c(event: TrainProgress) -> None:
        if event.phase == "training" and not pressed:
            pressed.append(event.step)
            signal.raise_signal(signal.SIGINT)  # as a terminal sends it

    options = TrainOptions(data=rows, out=out, steps=3, save_steps=100)
    stopped = train(options, progress=press_ctrl_c)
    assert stopped.interrupted and pressed == [1] and stopped.steps == 2 and stopped.total_steps == 3
    assert [path.name for path in stopped.checkpoints] == ["step-2"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    model = LlamaModel(n_ctx=256, lora_path=stopped.checkpoints[0] / "adapter.gguf")
    assert model.info.lora_sha256
    model.close()

    events: list[TrainProgress] = []
    resumed = train(TrainOptions(data=rows, out=out, steps=3, save_steps=100, resume=True), events.append)
    assert not resumed.interrupted and resumed.resumed_from == 2
    assert (resumed.steps, resumed.total_steps) == (3, 3)
    assert [e.step for e in events if e.phase == "training"] == [3]  # steps 1 and 2 are not trained again
    assert any(e.message == f"resuming from {out / 'checkpoints' / 'step-2'} (step 2)" for e in events)
    assert _steps(out / "metrics.jsonl") == [1, 2, 3]
    assert json.loads((out / "result.json").read_text())["resumed_from"] == 2
    assert [path.name for path in resumed.checkpoints] == ["step-2", "step-3"]

    # The same adapter, to the bit, as a run never stopped, with the same loss at every step.
    straight = train(TrainOptions(data=rows, out=tmp_path / "straight", steps=3, save_steps=100))
    expected, got = _tensors(straight.adapter), _tensors(resumed.adapter)
    assert set(got) == set(expected) and all(np.array_equal(got[k], expected[k]) for k in expected)
    assert _losses(out / "metrics.jsonl") == _losses(straight.out / "metrics.jsonl")
    model = LlamaModel(n_ctx=256, lora_path=resumed.adapter)
    assert model.info.lora_sha256
    model.close()


def test_a_full_disk_mid_save_loses_no_checkpoint_and_resume_continues(
    tmp_path: Path, sandbox_cli: Cli
) -> None:
    rows = export(make_run(tmp_path / "gen", n=1), tmp_path / "sft", "sft")
    out = tmp_path / "train"
    limits = resource.getrlimit(resource.RLIMIT_FSIZE)
    old_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)

    def fill_the_disk(event: TrainProgress) -> None:
        # After step 1's checkpoint: the kernel refuses every write past 1 MB (EFBIG, as ENOSPC would).
        if event.phase == "training" and event.step == 2:
            resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, limits[1]))

    try:
        with pytest.raises(CheckpointError) as caught:
            train(TrainOptions(data=rows, out=out, steps=3, save_steps=1), progress=fill_the_disk)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, limits)
        signal.signal(signal.SIGXFSZ, old_handler)
    message = str(caught.value)
    assert "\n" not in message and "could not write checkpoint step-2" in message and "intact" in message
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step-1"]
    assert not (out / ".trainer").exists()  # the half-written checkpoint is gone

    resumed = train(TrainOptions(data=rows, out=out, steps=3, save_steps=1, resume=True))
    assert resumed.resumed_from == 1 and (resumed.steps, resumed.total_steps) == (3, 3)
    assert _steps(out / "metrics.jsonl") == [1, 2, 3]

    # Options that change what is trained are refused, in one line, before anything loads.
    changed = TrainOptions(data=rows, out=out, steps=3, learning_rate=1e-3, rank=8, resume=True)
    with pytest.raises(ResumeRefused, match=r"other settings \(learning_rate, rank\)"):
        train(changed)
    other = export(make_run(tmp_path / "gen2", n=2), tmp_path / "sft2", "sft")
    for args, reason in (
        ([str(other), "-o", str(out), "--steps", "3"], "other settings (data)"),
        ([str(rows), "-o", str(out), "--steps", "4"], "other settings (steps)"),
        ([str(rows), "-o", str(tmp_path / "none")], "nothing to resume in"),
        ([str(rows), "-o", str(out), "--steps", "3", "--overwrite"], "--resume and --overwrite exclude"),
    ):
        done = sandbox_cli("train", *args, "--save-steps", "1", "--resume", timeout=300)
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 2 and len(lines) == 1 and reason in lines[0], done.stderr[-2000:]
    assert _steps(out / "metrics.jsonl") == [1, 2, 3]  # the refused resumes changed nothing


def test_sandbox_train_stopped_by_sigint_prints_the_command_that_finishes_it(tmp_path: Path) -> None:
    rows = export(make_run(tmp_path / "gen", n=1), tmp_path / "sft", "sft")
    out = tmp_path / "train"
    args = [sys.executable, "-m", "sandbox", "train", str(rows), "-o", str(out), "--steps", "3"]
    args += ["--save-steps", "1"]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    process = subprocess.Popen(
        args,
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # SIGINT to its process group, as a terminal sends it
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 600
    while not (out / "checkpoints" / "step-1").is_dir():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "no checkpoint in 600 s"
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGINT)
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 130, stderr[-3000:]
    line = next(line for line in stderr.splitlines() if line.startswith("interrupted:"))
    newest = max(int(path.name.split("-")[1]) for path in (out / "checkpoints").iterdir())
    assert newest < 3 and f"checkpoint {out / 'checkpoints' / f'step-{newest}'} saved" in line, line
    resume = shlex.split(line.split("resume with: ", 1)[1])
    assert resume == [*args, "--resume"]

    done = subprocess.run(resume, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"resumed from step {newest}" in done.stdout
    result = json.loads((out / "result.json").read_text(encoding="utf-8"))
    assert (result["steps"], result["total_steps"], result["resumed_from"]) == (3, 3, newest)
    assert not result["interrupted"] and _steps(out / "metrics.jsonl") == [1, 2, 3]
