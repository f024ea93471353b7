"""DPO through ``sandbox train`` and a GRPOTrainer step on a ``grpo`` export with the project's rewards."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from sandbox.train import TrainOptions, train
from tests.train.train_fixtures import export, make_run

pytestmark = [pytest.mark.train, pytest.mark.model]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_run(tmp_path_factory.mktemp("run"), n=4)


def test_a_dpo_step_trains_an_adapter_llama_cpp_loads(run: Path, tmp_path: Path) -> None:
    from sandbox.models import LlamaModel

    pairs = export(run, tmp_path / "dpo", "dpo", branch=True)
    result = train(TrainOptions(data=pairs, out=tmp_path / "train", steps=1))
    assert result.method == "dpo" and result.steps == 1 and result.rows == 2
    assert result.last_loss is not None and result.last_loss > 0  # DPO's -log sigmoid, about log 2 at first
    config = json.loads((tmp_path / "train" / "config.json").read_text())
    assert config["max_length"] > 40  # from the pairs, not TRL's default
    model = LlamaModel(n_ctx=256, lora_path=result.adapter)
    model.close()


def test_a_grpo_step_runs_with_the_projects_rewards(run: Path, tmp_path: Path) -> None:
    import datasets
    from trl import GRPOConfig, GRPOTrainer

    from sandbox.datasets import trl_reward_functions
    from sandbox.models import default_model_path
    from sandbox.train._base import load_base

    groups = export(run, tmp_path / "grpo", "grpo")
    dataset = datasets.load_dataset("json", data_files=str(groups / "train.jsonl"), split="train")
    assert "group_completions" in dataset.column_names and "completions" not in dataset.column_names
    model, tokenizer = load_base(default_model_path())
    calls: list[dict[str, Any]] = []
    rewards = trl_reward_functions("outcome,tool_syntax")

    def watched(function: Any) -> Any:
        def reward(**kwargs: Any) -> list[float | None]:
            values = function(**kwargs)
            calls.append({"name": function.__name__, "values": values, "columns": sorted(kwargs)})
            return values

        reward.__name__ = function.__name__
        return reward

    args = GRPOConfig(
        output_dir=str(tmp_path / "out"),
        max_steps=1,
        per_device_train_batch_size=2,
        num_generations=2,
        max_completion_length=16,
        learning_rate=1e-5,
        use_cpu=True,
        bf16=False,
        activation_checkpointing=False,
        report_to="none",
        logging_steps=1,
        save_strategy="no",
        disable_tqdm=True,
    )
    from peft import LoraConfig

    trainer = GRPOTrainer(
        model=model,
        reward_funcs=[watched(f) for f in rewards],
        args=args,
        train_dataset=dataset,
        processing_class=tokenizer,
        peft_config=LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"),
    )
    trainer.train()
    assert trainer.state.global_step == 1
    assert {call["name"] for call in calls} == {"outcome", "tool_syntax"}
    for call in calls:
        assert "task" in call["columns"] and all(isinstance(v, float) for v in call["values"])
    logged = trainer.state.log_history[0]
    assert "rewards/outcome/mean" in logged and "rewards/tool_syntax/mean" in logged
