"""Judge backends: ``judge(prompts) -> list[str]`` (one reply per prompt).

* :class:`HTTPJudge` — any OpenAI-compatible ``/chat/completions`` endpoint. Base URL, model and key come
  from arguments or the environment (``PEDGPT_JUDGE_BASE_URL`` / ``PEDGPT_JUDGE_MODEL`` /
  ``PEDGPT_JUDGE_API_KEY``, falling back to ``OPENAI_BASE_URL`` / ``OPENAI_API_KEY``); the key is held in a
  private attribute, sent only in the ``Authorization`` header, and never printed, logged or written. A
  base URL with credentials (``https://user:pass@host/v1?token=…``) is used as given but shown everywhere
  (errors, ``repr``, ``describe()`` → ``judge.json``) without them (``https://***@host/v1?token=***``).
* :class:`HFJudge` — a local HF export (``load_for_inference``), greedy answers via ``generate_batch``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence

from pedgpt.data.corpus.rewrite import endpoint_url, redact_url
from pedgpt.data.schema import Message
from pedgpt.inference.generation import GenerationSettings, encode_prompt, generate_batch
from pedgpt.models.exports import load_for_inference


class JudgeError(RuntimeError):
    """A judge backend failed; the message never contains the API key."""


def _env(*names: str) -> str | None:
    return next((os.environ[n] for n in names if os.environ.get(n)), None)


class HTTPJudge:
    def __init__(
        self,
        base_url: str | None = None,
        model: str | None = None,
        api_key_env: str | None = None,
        timeout_s: float = 120.0,
        max_tokens: int = 512,
        retries: int = 2,
    ) -> None:
        self.base_url = (base_url or _env("PEDGPT_JUDGE_BASE_URL", "OPENAI_BASE_URL") or "").rstrip("/")
        self.model = model or _env("PEDGPT_JUDGE_MODEL")
        if not self.base_url or not self.model:
            raise JudgeError(
                "the http judge needs a base URL and a model: pass --base-url/--model or set "
                "PEDGPT_JUDGE_BASE_URL and PEDGPT_JUDGE_MODEL"
            )
        self._key = _env(api_key_env) if api_key_env else _env("PEDGPT_JUDGE_API_KEY", "OPENAI_API_KEY")
        self.timeout_s, self.max_tokens, self.retries = timeout_s, max_tokens, retries

    @property
    def shown_url(self) -> str:
        """The base URL as printed and written: no credentials, no query values."""
        return redact_url(self.base_url)

    @property
    def endpoint(self) -> str:
        return endpoint_url(self.base_url, "/chat/completions")

    def __repr__(self) -> str:
        return f"HTTPJudge(base_url={self.shown_url!r}, model={self.model!r}, key={'set' if self._key else 'unset'})"

    def describe(self) -> dict[str, str]:
        return {"backend": "http", "base_url": self.shown_url, "model": self.model}

    def _ask(self, client, prompt: str) -> str:
        body = {
            "model": self.model,
            "messages": [{"role": "user", "content": prompt}],
            "temperature": 0,
            "max_tokens": self.max_tokens,
        }
        headers = {"Authorization": f"Bearer {self._key}"} if self._key else {}
        last = ""
        for attempt in range(self.retries + 1):
            try:
                r = client.post(self.endpoint, json=body, headers=headers)
            except Exception as e:  # connection problems: retried, then reported by type only
                last = type(e).__name__
            else:
                if r.status_code == 200:
                    try:
                        return r.json()["choices"][0]["message"]["content"] or ""
                    except (ValueError, KeyError, IndexError, TypeError):
                        raise JudgeError(f"{redact_url(self.endpoint)}: unexpected reply shape") from None
                last = f"HTTP {r.status_code}"
                if r.status_code < 500 and r.status_code != 429:
                    break
            time.sleep(min(2**attempt, 8) * 0.25)
        raise JudgeError(f"{redact_url(self.endpoint)} failed: {last}")

    def judge(self, prompts: Sequence[str]) -> list[str]:
        import httpx

        with httpx.Client(timeout=self.timeout_s) as client:
            return [self._ask(client, p) for p in prompts]


class HFJudge:
    def __init__(self, model_dir: str, max_new_tokens: int = 256, batch_size: int = 8, device: str = "cpu") -> None:
        self.loaded = load_for_inference(model_dir, device=device)
        self.model_dir, self.max_new_tokens, self.batch_size = model_dir, max_new_tokens, batch_size

    def describe(self) -> dict[str, str]:
        return {"backend": "hf", "model": self.model_dir}

    def judge(self, prompts: Sequence[str]) -> list[str]:
        """Greedy replies; a prompt longer than the model's context gets "" (an unparseable verdict)."""
        positions = getattr(self.loaded.model.config, "max_position_embeddings", None)
        limit = positions - self.max_new_tokens if positions else None
        convs = [[Message("user", p)] for p in prompts]
        fits = []
        for i, conv in enumerate(convs):
            try:
                encode_prompt(self.loaded, conv, max_prompt_len=limit)
                fits.append(i)
            except ValueError:
                continue
        replies = [""] * len(prompts)
        answers = generate_batch(
            self.loaded,
            [convs[i] for i in fits],
            GenerationSettings(max_new_tokens=self.max_new_tokens),
            batch_size=self.batch_size,
            max_prompt_len=limit,
        )
        for i, a in zip(fits, answers):
            replies[i] = a
        return replies
