"""The training chat template: byte for byte the model's own on real export rows, with the assistant's
tokens (and only those) in the loss mask; and rows whose calls a template would drop are refused."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sandbox.train import TrainDataError, training_template
from sandbox.train._data import read_data
from sandbox.train._templates import check_calls_rendered, check_identical
from tests.train.train_fixtures import export, make_run

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def tokenizer() -> Any:
    from transformers import AutoTokenizer

    from sandbox.models import default_model_path

    path = default_model_path()
    return AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """All three tasks x 4 samples: the weather task calls the real weather server over stdio."""
    return make_run(tmp_path_factory.mktemp("run"), with_tools=True)


def _rows(run: Path, out: Path, fmt: str, **changes: object) -> Any:
    folder = export(run, out / fmt, fmt, **changes)
    return read_data(folder, None, out)


def test_the_training_template_renders_real_rows_as_the_model_reads_them(
    tokenizer: Any, llama_model: Any, run: Path, tmp_path: Path
) -> None:
    from sandbox.records import read_traces

    model_template = tokenizer.chat_template
    template = training_template(model_template)
    assert template != model_template and "{% generation %}" in template
    data = _rows(run, tmp_path, "sft")
    assert any(row["messages"][0]["content"].count("get_hourly_forecast") for row in data.rows)  # tool rows
    assert check_identical(tokenizer, data.conversations(), model_template, template) == len(data.rows)
    traces = {trace.id: trace for trace in read_traces(run / "traces.jsonl")}
    for row in data.rows:
        marked = tokenizer.apply_chat_template(row["messages"], chat_template=template, tokenize=False)
        # the text llama.cpp renders in an episode (sandbox.models.LlamaModel)
        assert marked == llama_model.render(traces[row["trace_id"]].messages, add_generation_prompt=False)
    dpo = _rows(run, tmp_path, "dpo", branch=True)
    assert check_identical(tokenizer, dpo.conversations(), model_template, template) == 2 * len(dpo.rows)


def test_the_loss_mask_is_exactly_the_assistants_text_and_end_of_turn(
    tokenizer: Any, run: Path, tmp_path: Path
) -> None:
    template = training_template(tokenizer.chat_template)
    for row in _rows(run, tmp_path, "sft").rows:
        out = tokenizer.apply_chat_template(
            row["messages"],
            chat_template=template,
            tokenize=True,
            return_dict=True,
            return_assistant_tokens_mask=True,
        )
        masked = [token for token, keep in zip(out["input_ids"], out["assistant_masks"], strict=True) if keep]
        expected = "".join(m["content"] + "<|im_end|>" for m in row["messages"] if m["role"] == "assistant")
        assert tokenizer.decode(masked) == expected


def test_a_template_without_markers_and_unknown_is_refused_with_the_fix() -> None:
    with pytest.raises(TrainDataError, match="--chat-template"):
        training_template("{% for m in messages %}{{ m['content'] }}{% endfor %}")


@pytest.mark.parametrize(("fmt", "calls"), [("sft", "native"), ("openai", "native")])
def test_rows_whose_calls_the_template_drops_are_refused(
    tokenizer: Any, run: Path, tmp_path: Path, fmt: str, calls: str
) -> None:
    template = training_template(tokenizer.chat_template)
    folder = (
        export(run, tmp_path / fmt, fmt, calls=calls) if fmt == "sft" else export(run, tmp_path / fmt, fmt)
    )
    data = read_data(folder, None, tmp_path)
    with pytest.raises(TrainDataError, match="--calls text") as caught:
        check_calls_rendered(tokenizer, data.conversations(), template)
    assert "\n" not in str(caught.value)
    text = _rows(run, tmp_path / "text", "sft")  # the same run exported with the calls in the text passes
    check_calls_rendered(tokenizer, text.conversations(), template)


def test_a_template_that_renders_tools_takes_native_rows(run: Path, tmp_path: Path, tokenizer: Any) -> None:
    renders_tools = (
        "{% for m in messages %}<|{{ m['role'] }}|>{% generation %}{{ m['content'] }}{% endgeneration %}"
        "{% for c in m.get('tool_calls') or [] %}<call>{{ c['function']['name'] }} "
        "{{ c['function']['arguments'] | tojson }}</call>{% endfor %}{% endfor %}"
        "{% for t in tools or [] %}{{ t['function']['name'] }}{% endfor %}"
    )
    data = read_data(export(run, tmp_path / "native", "sft", calls="native"), None, tmp_path)
    assert any(m.get("tool_calls") for row in data.rows for m in row["messages"])
    check_calls_rendered(tokenizer, data.conversations(), renders_tools)
