"""Optional rewrite step: polish templated answers through any OpenAI-compatible chat endpoint.

The paper polishes its templated instructions with GPT-4; here any server speaking
``POST {base_url}/chat/completions`` works (OpenAI, vLLM, a local stub). Off by default
(``rewrite.enabled``); only the last assistant turn of instructions whose task is in ``rewrite.tasks`` is
rewritten, at temperature 0, and the record keeps its id and split (``meta.rewritten`` names the model).
"""

from __future__ import annotations

import dataclasses
import json
import os
import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import Any

from pedgpt.data.schema import Instruction, Message, Record

SYSTEM = (
    "你是一名经验丰富的儿科医生。请在不改变任何医学事实、药物和数字的前提下，把下面的回答润色得通顺、"
    "完整、有同理心。只输出润色后的回答。"
)


def chat_completion(
    base_url: str, model: str, messages: list[dict[str, str]], api_key: str | None = None, timeout: float = 60.0
) -> str:
    """One chat completion; returns the first choice's content. Failures raise ``RuntimeError`` (one line)."""
    url = base_url.rstrip("/") + "/chat/completions"
    body = json.dumps({"model": model, "messages": messages, "temperature": 0}, ensure_ascii=False).encode("utf-8")
    headers = {"Content-Type": "application/json"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            payload = json.loads(resp.read().decode("utf-8"))
        return str(payload["choices"][0]["message"]["content"]).strip()
    except (urllib.error.URLError, OSError, KeyError, IndexError, ValueError) as e:
        raise RuntimeError(f"rewrite: POST {url} failed ({type(e).__name__}: {e})") from None


def rewrite_records(records: Sequence[Record], cfg: Any) -> list[Record]:
    """A copy of ``records`` with the answers of ``cfg.tasks`` instructions rewritten by ``cfg.model``."""
    for key in ("base_url", "model"):
        if not cfg.get(key):
            raise ValueError(f"rewrite.{key} must be set when rewrite.enabled=true")
    api_key = os.environ.get(cfg.get("api_key_env") or "", None)
    out: list[Record] = []
    for r in records:
        if isinstance(r, Instruction) and r.task in cfg.tasks:
            prompt = "\n".join(f"{m.role}: {m.content}" for m in r.messages[:-1])
            text = chat_completion(
                cfg.base_url,
                cfg.model,
                [
                    {"role": "system", "content": SYSTEM},
                    {"role": "user", "content": f"对话：\n{prompt}\n\n原回答：\n{r.response}"},
                ],
                api_key=api_key,
                timeout=float(cfg.get("timeout_s", 60)),
            )
            if text:
                r = dataclasses.replace(
                    r,
                    messages=r.messages[:-1] + [Message("assistant", text)],
                    meta={**r.meta, "rewritten": str(cfg.model)},
                )
        out.append(r)
    return out
