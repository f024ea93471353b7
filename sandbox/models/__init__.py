"""Model backends behind one seam (:class:`Model`: ``acomplete(request) -> response``).

- :class:`LlamaModel` -- llama.cpp in process, one conversation at a time, the KV cache of every
  earlier turn reused.
- :class:`BatchedLlamaModel` -- llama.cpp in process for many episodes at once: one scheduler puts
  every in-flight turn into one ``llama_decode`` batch.
- :class:`OpenAIModel` -- any OpenAI-compatible HTTP server (llama-server, vLLM, Ollama).
- :class:`ScriptedModel` -- written turns, for unit tests of the loop.
- :class:`OracleModel` -- plays each task's reference solution (:func:`oracle_turns`), the best
  episode a task has; the gauntlet's baseline, and with ``thoughts="demo"`` demonstrations to train on.
- :class:`LlamaScorer` -- a local GGUF model as a judge's backend (next-token option log-probabilities).
- :class:`PolicyRollouts` -- a policy's continuations of partial solutions (Monte Carlo step values).
- :class:`OpenAIScorer` -- a judge's backend on an OpenAI-compatible server (``top_logprobs``).

Model files: :func:`default_model_path` (the embedded SmolLM2-135M), :func:`check_model_file`,
:func:`file_sha256`, :func:`load_llama` (the one llama.cpp loader) and :func:`quantize`.
llama.cpp itself is imported only when a model is made.
"""

from sandbox.models._base import MIN_COMPLETION_TOKENS, Model, ModelRequest, ModelResponse, SyncModel
from sandbox.models._batched import BatchedLlamaModel, BatchStats
from sandbox.models._decode import common_prefix, decode
from sandbox.models._files import (
    chat_formatter,
    check_model_file,
    default_model_path,
    default_threads,
    file_sha256,
    load_llama,
    read_chat_template,
    write_chat_template,
)
from sandbox.models._http import GRAMMAR_FIELDS, OpenAIModel, RetryPolicy
from sandbox.models._http_scorer import OpenAIScorer
from sandbox.models._llama import LlamaModel
from sandbox.models._oracle import (
    THOUGHT_STYLES,
    OracleError,
    OracleModel,
    ThoughtStyle,
    oracle_answer,
    oracle_turns,
)
from sandbox.models._quantize import Quantized, quantize
from sandbox.models._rollouts import PolicyRollouts
from sandbox.models._scorer import LlamaScorer
from sandbox.models._scripted import ScriptedModel

__all__ = [
    "BatchStats",
    "BatchedLlamaModel",
    "GRAMMAR_FIELDS",
    "LlamaModel",
    "LlamaScorer",
    "MIN_COMPLETION_TOKENS",
    "Model",
    "ModelRequest",
    "ModelResponse",
    "OpenAIModel",
    "OpenAIScorer",
    "OracleError",
    "OracleModel",
    "PolicyRollouts",
    "Quantized",
    "RetryPolicy",
    "ScriptedModel",
    "SyncModel",
    "THOUGHT_STYLES",
    "ThoughtStyle",
    "chat_formatter",
    "check_model_file",
    "common_prefix",
    "decode",
    "default_model_path",
    "default_threads",
    "file_sha256",
    "load_llama",
    "oracle_answer",
    "oracle_turns",
    "quantize",
    "read_chat_template",
    "write_chat_template",
]
