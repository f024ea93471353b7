"""A judge model behind an OpenAI-compatible server: option log-probabilities from a chat reply.

The judge (``rewards.JudgePRM``) needs, for each question, the log-probability of each option
("0".."4", "0"/"1") as the token where the judge writes its score. A chat API cannot be handed the
start of the reply ("Score: "), so the question asks for the digit and the reply is read as it comes:
one greedy request per question (temperature 0, up to :data:`SCAN_TOKENS` tokens, ``logprobs`` with
the :data:`TOP_LOGPROBS` likeliest tokens at each position), and the score slot is the first position
where the judge writes an option (up to whitespace) with no digit written before it: "1",
"Score: 1" and "The answer is 0." are read at their digit, while a reply that writes another number
first ("Step 2 is right", "3 + 4 = 7") has no slot, so a number is never taken for the score. There,
each option's log-probability is the log-sum of the listed tokens that are the option up to
whitespace (``"1"``, ``" 1"``); an option not listed gets the smallest listed log-probability, an
upper bound on its own. A reply with no slot gives every option the smallest log-probability the
reply lists: the options are then equally likely (a step grade of 0.5) and their mass is small,
which :class:`~rewards.OptionScore` reports.

Servers that return ``top_logprobs`` this way: llama-server (``--n-probs`` not needed), vLLM,
llama-cpp-python's server (its models load with ``logits_all``, the default there) and OpenAI's API.
``sha256`` is the digest of the model's ``/v1/models`` entry (without ``created``, which some servers
set to the time of the request): a server does not say which file it serves, so the judge's version
names the served model's id and what the server lists about it.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from typing import Any

import anyio

from sandbox.models._http import OpenAIModel
from sandbox.records import JudgeError, JudgePrompt

SCAN_TOKENS = 10  # reply tokens in which the score slot is looked for
TOP_LOGPROBS = 20  # the most OpenAI's API returns per position
REPLY_INSTRUCTION = 'Reply with "{prefix}" and the digit, nothing else.'


class OpenAIScorer:
    """A judge backend on a model served over HTTP (see the module doc); ``option_logprobs`` sends
    one request per prompt, up to ``max_concurrency`` at once."""

    def __init__(
        self,
        base_url: str,
        *,
        model: str | None = None,
        api_key: str | None = None,
        max_concurrency: int = 4,
        timeout: float = 600.0,
    ) -> None:
        self._model = OpenAIModel(
            base_url, model=model, api_key=api_key, max_concurrency=max_concurrency, timeout=timeout
        )
        self.name = self._model.name
        self.base_url = self._model.base_url
        entry = {key: value for key, value in self._model.entry.items() if key != "created"}
        self.sha256 = hashlib.sha256(json.dumps(entry, sort_keys=True).encode()).hexdigest()

    def option_logprobs(self, prompts: Sequence[JudgePrompt], options: Sequence[str]) -> list[list[float]]:
        """For each prompt, each option's log-probability at the reply's score slot."""
        rows: list[list[float]] = [[] for _ in prompts]

        async def ask_all() -> None:
            try:
                async with anyio.create_task_group() as group:
                    for index, prompt in enumerate(prompts):
                        group.start_soon(ask, index, prompt)
            finally:
                await self._model.aclose()

        async def ask(index: int, prompt: JudgePrompt) -> None:
            reply = await self._model.apost(self.payload(prompt))
            rows[index] = slot_logprobs(self._content(reply), options)

        try:
            anyio.run(ask_all)
        except BaseExceptionGroup as group:  # one question failed: its error, not the group's
            raise _first_leaf(group) from None
        return rows

    def payload(self, prompt: JudgePrompt) -> dict[str, Any]:
        """The body for one question: greedy, a few tokens, the likeliest tokens' log-probabilities."""
        instruction = REPLY_INSTRUCTION.format(prefix=prompt.reply_prefix.strip())
        return {
            "model": self.name,
            "messages": [
                {"role": "system", "content": prompt.system},
                {"role": "user", "content": f"{prompt.user}\n\n{instruction}"},
            ],
            "temperature": 0.0,
            "max_tokens": SCAN_TOKENS,
            "logprobs": True,
            "top_logprobs": TOP_LOGPROBS,
            "seed": 0,
        }

    def close(self) -> None:
        """Nothing is held between calls."""

    def _content(self, reply: dict[str, Any]) -> list[dict[str, Any]]:
        choices = reply.get("choices")
        choice = choices[0] if isinstance(choices, list) and choices and isinstance(choices[0], dict) else {}
        logprobs = choice.get("logprobs")
        content = logprobs.get("content") if isinstance(logprobs, dict) else None
        if not isinstance(content, list):
            raise JudgeError(
                f"judge server {self.base_url} sent no token log-probabilities for {self.name}; the judge "
                "needs a server that answers logprobs/top_logprobs (llama-server, vLLM, llama-cpp-python)"
            )
        return [entry for entry in content if isinstance(entry, dict)]


def slot_logprobs(content: Sequence[dict[str, Any]], options: Sequence[str]) -> list[float]:
    """Each option's log-probability at the score slot of a reply's ``logprobs.content`` (module doc)."""
    for entry in content:
        token = entry.get("token")
        token = token if isinstance(token, str) else ""
        listed = _listed(entry)
        if token.strip() in options and listed:
            found = [_logsumexp([lp for tok, lp in listed if tok.strip() == option]) for option in options]
            floor = min(lp for _, lp in listed)
            return [value if value > -math.inf else floor for value in found]
        if any(char.isdigit() for char in token):
            break  # another number came first: no slot
    floor = min((lp for entry in content for _, lp in _listed(entry)), default=0.0)
    return [floor for _ in options]


def _listed(entry: dict[str, Any]) -> list[tuple[str, float]]:
    """The (token, log-probability) pairs a position lists: its top tokens, and the token written
    when the top tokens leave it out."""
    pairs: dict[str, float] = {}
    for item in [*(entry.get("top_logprobs") or []), entry]:
        if isinstance(item, dict) and isinstance(item.get("token"), str) and item["token"] not in pairs:
            value = item.get("logprob")
            if isinstance(value, int | float) and not isinstance(value, bool) and value > -math.inf:
                pairs[item["token"]] = float(value)
    return list(pairs.items())


def _first_leaf(group: BaseExceptionGroup) -> BaseException:
    first = group.exceptions[0]
    return _first_leaf(first) if isinstance(first, BaseExceptionGroup) else first


def _logsumexp(values: Sequence[float]) -> float:
    if not values:
        return -math.inf
    peak = max(values)
    return peak + math.log(math.fsum(math.exp(v - peak) for v in values))
