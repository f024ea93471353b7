"""``sandbox train`` end to end: real training steps on the embedded model, the adapter GGUF read back
by llama.cpp on the unchanged Q4_1 base (``sandbox loss --lora``), and the run folder it leaves."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.train.train_fixtures import make_run, mean_loss, rewrite_adapter, trained_traces

Cli = Callable[..., subprocess.CompletedProcess[str]]
pytestmark = [pytest.mark.train, pytest.mark.model]
STEPS = 4
# Nats per assistant token the adapter must take off the trained rows' loss.
MIN_GAIN = 0.05


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two no-tool tasks x 6 samples, half of them right (total reward 2)."""
    return make_run(tmp_path_factory.mktemp("run"), n=6)


@pytest.fixture(scope="module")
def trained(run: Path, sandbox_cli: Cli, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """`sandbox train` on the run's right samples, as a user runs it: its folder and its output."""
    out = tmp_path_factory.mktemp("train") / "sft"
    done = sandbox_cli(
        "train", str(run), "-o", str(out), "--min-reward", "2", "--steps", str(STEPS), "--lr", "1e-3",
        "--save-steps", "2", "--merge", "f16",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return out, done.stdout + done.stderr


@pytest.fixture(scope="module")
def losses(run: Path, trained: tuple[Path, str], sandbox_cli: Cli) -> Callable[..., float]:
    """The trained rows' mean loss through llama.cpp (`sandbox loss`), with the given extra options."""
    out, _ = trained
    traces = trained_traces(run, out / "data.jsonl", out.parent / "trained.jsonl")

    def loss(*options: str, name: str) -> float:
        target = out.parent / f"{name}.losses.jsonl"
        done = sandbox_cli("loss", str(traces), "-o", str(target), *options)
        assert done.returncode == 0, done.stderr[-2000:]
        return mean_loss(target)

    return loss


def assert_lowers_loss(base: float, tuned: float) -> None:
    assert tuned <= base - MIN_GAIN, f"loss {base:.4f} -> {tuned:.4f}: the adapter did not lower it"


def test_a_few_steps_lower_the_rows_loss_under_llama_cpp(
    trained: tuple[Path, str], losses: Callable[..., float]
) -> None:
    out, _ = trained
    base = losses(name="base")
    tuned = losses("--lora", str(out / "adapter.gguf"), name="tuned")
    assert_lowers_loss(base, tuned)


def test_an_adapter_that_changes_nothing_fails_that_test(
    trained: tuple[Path, str], losses: Callable[..., float]
) -> None:
    out, _ = trained
    zeroed = rewrite_adapter(out / "adapter.gguf", out.parent / "zeroed.gguf", zero_b=True)
    base, same = losses(name="base"), losses("--lora", str(zeroed), name="zeroed")
    assert same == pytest.approx(base, abs=1e-3)  # it loaded, and it is the base model
    with pytest.raises(AssertionError):
        assert_lowers_loss(base, same)


def test_the_merged_f16_model_keeps_the_gain(trained: tuple[Path, str], losses: Callable[..., float]) -> None:
    out, _ = trained
    tuned = losses("--lora", str(out / "adapter.gguf"), name="tuned")
    merged = losses("--model", str(out / "model-f16.gguf"), name="merged")
    assert merged == pytest.approx(tuned, abs=0.03)
    assert_lowers_loss(losses(name="base"), merged)


def test_the_run_folder_holds_config_rows_checkpoints_and_progress(trained: tuple[Path, str]) -> None:
    out, output = trained
    config = json.loads((out / "config.json").read_text())
    rows = [json.loads(line) for line in (out / "data.jsonl").read_text().splitlines()]
    assert config["method"] == "sft" and config["data"]["rows"] == len(rows) >= 3
    assert (
        config["max_length"] >= max(len(line) for line in (out / "data.jsonl").read_text().splitlines()) // 8
    )
    assert len(config["model"]["sha256"]) == 64 and set(config["stack"]) >= {"torch", "trl", "peft"}
    assert all(row["reward"] >= 2 for row in rows)
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step-2", "step-4"]
    for step in ("step-2", "step-4"):
        checkpoint = out / "checkpoints" / step
        assert (checkpoint / "adapter.gguf").stat().st_size > 1_000_000
        # The Trainer's own checkpoint, which --resume continues from: adapter, optimizer, state.
        assert {"adapter_config.json", "adapter_model.safetensors", "optimizer.pt", "trainer_state.json"} <= {
            p.name for p in checkpoint.iterdir()
        }
    assert not (out / ".trainer").exists()  # the staging folder is gone
    metrics = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in metrics] == list(range(1, STEPS + 1))
    assert all(m["tokens_per_second"] > 0 for m in metrics)
    assert [m["tokens"] for m in metrics] == sorted({m["tokens"] for m in metrics})  # grows every step
    result = json.loads((out / "result.json").read_text())
    assert result["steps"] == STEPS and not result["interrupted"] and result["peak_rss_mb"] > 100
    assert f"step 1/{STEPS}" in output and "tok/s" in output and "--lora" in output


def test_the_adapter_is_a_llama_cpp_lora_gguf(trained: tuple[Path, str]) -> None:
    import gguf

    out, _ = trained
    reader = gguf.GGUFReader(out / "adapter.gguf")
    assert reader.fields["general.type"].contents() == "adapter"
    assert reader.fields["adapter.type"].contents() == "lora"
    assert reader.fields["adapter.lora.alpha"].contents() == 32.0
    assert reader.fields["general.architecture"].contents() == "llama"
    names = {tensor.name: [int(n) for n in tensor.shape] for tensor in reader.tensors}
    kinds = ("attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down")
    expected = {f"blk.{i}.{k}.weight.lora_{ab}" for i in range(30) for k in kinds for ab in "ab"}
    assert set(names) == expected
    # ggml order: lora_a is (in, rank), lora_b (rank, out); SmolLM2: 576 wide, 3 KV heads of 64.
    assert names["blk.0.attn_q.weight.lora_a"] == [576, 16] and names["blk.0.attn_k.weight.lora_b"] == [
        16,
        192,
    ]


def test_lora_on_run_and_on_the_batched_model(trained: tuple[Path, str], run: Path, sandbox_cli: Cli) -> None:
    out, _ = trained
    adapter = str(out / "adapter.gguf")
    inputs = run.parent / "inputs"
    common = [
        "--tasks",
        str(inputs / "tasks.jsonl"),
        "--servers",
        str(inputs / "mcp.json"),
        "--max-steps",
        "1",
    ]
    done = sandbox_cli(
        "run", *common, "--out", str(out.parent / "run.jsonl"), "--max-tokens", "24", "--lora", adapter
    )
    assert done.returncode == 0, done.stderr[-2000:]
    traces = [json.loads(line) for line in (out.parent / "run.jsonl").read_text().splitlines()]
    assert {t["model"]["lora"] for t in traces} == {adapter} and all(
        t["model"]["lora_sha256"] for t in traces
    )
    generated = out.parent / "generated"
    done = sandbox_cli(
        "generate", *common, "--out", str(generated), "--n", "1", "--parallel", "2", "--max-tokens", "24",
        "--lora", adapter,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    config = json.loads((generated / "config.json").read_text())
    assert config["model"]["lora_sha256"] == traces[0]["model"]["lora_sha256"]
    assert (
        "batched" in json.loads((generated / "traces.jsonl").read_text().splitlines()[0])["model"]["backend"]
    )


def test_an_adapter_for_another_model_fails_with_one_line(
    trained: tuple[Path, str], run: Path, sandbox_cli: Cli
) -> None:
    from sandbox.models import default_model_path

    out, _ = trained
    traces = str(run / "traces.jsonl")
    qwen = rewrite_adapter(out / "adapter.gguf", out.parent / "qwen2.gguf", architecture="qwen2")
    for adapter, reason in ((qwen, "arch mismatch"), (default_model_path(), "general.type")):
        done = sandbox_cli("loss", traces, "--lora", str(adapter))
        assert done.returncode == 2
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: LoRA adapter") and reason in lines[0], lines
    done = sandbox_cli("replay", traces, "-o", str(out.parent / "r.jsonl"), "--lora", str(qwen))
    assert done.returncode == 2 and "--lora goes with --model" in done.stderr
